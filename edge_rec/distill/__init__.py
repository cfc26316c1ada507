"""Knowledge distillation: the Distiller model, its loss terms and the training loop."""
