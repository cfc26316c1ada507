"""Device profiles: built-ins, user TOML files, validation errors, budget checks."""

import pytest

from device_runtime.benchmarking.device_profile import (
    BUILTIN_PROFILES,
    ProfileError,
    check_budgets,
    load_profile,
)


def _result(p99_us=1000.0, rss=50.0, size=1024 * 1024, ndcg=0.3):
    return {"latency_us": {"p99": p99_us}, "peak_rss_mb": rss, "size_bytes": size,
            "metrics": {"ndcg@10": ndcg} if ndcg is not None else None}


@pytest.mark.parametrize("name", BUILTIN_PROFILES)
def test_builtin_profiles_have_every_budget(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.threads >= 1
    assert set(profile.budgets()) == {"latency_p99_ms", "peak_rss_mb", "model_size_mb", "min_ndcg_at_10"}


def test_speaker_is_tighter_than_tv():
    speaker, tv = load_profile("smart-speaker"), load_profile("tv")
    assert speaker.peak_rss_mb < tv.peak_rss_mb
    assert speaker.model_size_mb < tv.model_size_mb
    assert speaker.latency_p99_ms <= tv.latency_p99_ms
    assert speaker.threads <= tv.threads


def test_user_profile_and_partial_budgets(tmp_path):
    path = tmp_path / "box.toml"
    path.write_text('name = "box"\nthreads = 3\n[budgets]\npeak_rss_mb = 64\n')
    profile = load_profile(path)
    assert (profile.name, profile.threads, profile.budgets()) == ("box", 3, {"peak_rss_mb": 64.0})
    check = check_budgets(profile, _result(rss=70.0))
    assert check["results"]["peak_rss_mb"]["status"] == "fail"
    assert check["passed"] is False


@pytest.mark.parametrize("text, field", [
    ("[budgets]\nlatency_p99 = 3\n", "budgets.latency_p99"),
    ("[budgets]\npeak_rss_mb = \"lots\"\n", "budgets.peak_rss_mb"),
    ("[budgets]\nmodel_size_mb = -1\n", "budgets.model_size_mb"),
    ("[budgets]\nmin_ndcg_at_10 = 2.0\n", "budgets.min_ndcg_at_10"),
    ("threads = 0\n", "threads"),
    ("cores = 2\n", "cores"),
    ("threads = [\n", "not valid TOML"),
])
def test_invalid_profile_names_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="smart-speaker"):
        load_profile("watch")
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "missing.toml")


def test_check_budgets_pass_fail_skip():
    profile = load_profile("smart-speaker")
    ok = check_budgets(profile, _result())
    assert ok["passed"] and all(v["status"] == "pass" for v in ok["results"].values())
    assert ok["results"]["latency_p99_ms"]["value"] == pytest.approx(1.0)
    assert ok["results"]["model_size_mb"]["value"] == pytest.approx(1.0)

    slow = check_budgets(profile, _result(p99_us=(profile.latency_p99_ms + 1) * 1000))
    assert not slow["passed"] and slow["results"]["latency_p99_ms"]["status"] == "fail"

    poor = check_budgets(profile, _result(ndcg=profile.min_ndcg_at_10 / 2))
    assert not poor["passed"] and poor["results"]["min_ndcg_at_10"]["status"] == "fail"

    unmeasured = check_budgets(profile, _result(ndcg=None))
    assert unmeasured["passed"] and unmeasured["results"]["min_ndcg_at_10"]["status"] == "skipped"


def test_runtime_limits_and_the_student_size_derive_from_the_device_profiles():
    from device_runtime.benchmarking.device_profile import MIB, load_profile
    from device_runtime.runtime_limits import PROCESS_BASELINE_MB, RuntimeLimits
    from edge_rec.sizing import SIZING_PROFILE, STUDENT_FILE_BYTES, STUDENT_SHARE_OF_MODEL_BUDGET

    speaker, tv = load_profile("smart-speaker"), load_profile("tv")
    limits = RuntimeLimits.for_profile(speaker)
    assert limits.max_interpreters == speaker.threads == 1
    assert limits.memory_limit_bytes == int(speaker.peak_rss_mb - PROCESS_BASELINE_MB) * MIB
    assert RuntimeLimits.for_profile(tv).max_interpreters == tv.threads == 2
    assert STUDENT_FILE_BYTES == int(load_profile(SIZING_PROFILE).model_size_mb * MIB * STUDENT_SHARE_OF_MODEL_BUDGET)
