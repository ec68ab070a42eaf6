"""Check that each protection in docs/reliability.md is really tested: remove it in a scratch copy of
the repository and run the tests that should then fail. Nothing in this checkout is modified.

    python tests/reliability/verify_by_removal.py            # every removal (several minutes)
    python tests/reliability/verify_by_removal.py P10-prune P5-npz

Each removal is a textual patch (old -> new) of one file. A patch whose ``old`` text is gone means
the protection moved: update the entry. The verdict ``FAILS`` is what we want (the tests catch the
removal); ``PASSES`` means a row of the table is not really covered. Not a pytest module (no
``test_`` prefix): it runs pytest itself, in the scratch copy, whose modules shadow the editable
install because the scratch directory is the working directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
R = "tests/reliability/"


@dataclass(frozen=True)
class Removal:
    key: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


REMOVALS = [
    Removal("P1-staging", "write checkpoints in place instead of staging + rename", "rl/core/checkpoint.py",
            """        _write_staging(staging, step, parts)
        _fault("before_replace", step)
        if os.path.lexists(final):  # re-saving a step (resumed run): rename() cannot replace a full dir
            os.replace(final, aside)
        os.replace(staging, final)
""", """        shutil.rmtree(final, ignore_errors=True)
        _write_staging(final, step, parts)
        _fault("before_replace", step)
""", (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
          "[ppo-between_components-None]",)),
    Removal("P2-rng", "on-policy resume does not restore the sampler generator", "experiments/loops/onpolicy.py",
            'restore_generator(sampler.rng, session.restored.state["loop"]["sampler_rng"])', "pass",
            (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
                 "[ppo-before_replace-None]",)),
    Removal("P2-buffer", "off-policy resume does not restore the replay buffer", "experiments/loops/offpolicy.py",
            'storage.load(st["storage"], restored.buffers)', "pass",
            (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
                 "[dqn-after_tmp_write-None]",)),
    Removal("P3-truncate", "metrics.csv is not cut back to the checkpoint on resume", "rl/core/metrics.py",
            "if resume_step is not None and self.path.exists():", "if False:",
            (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
                 "[ppo-before_replace-None]",
             R + "test_broken_files.py::test_a_damaged_last_metrics_row_is_dropped_on_resume[cut_row]")),
    Removal("P3-damaged-row", "a damaged row before the checkpoint silently ends the kept history",
            "rl/core/metrics.py", "            if bad is not None:\n", "            if False:\n",
            (R + "test_broken_files.py::test_a_damaged_metrics_row_before_the_checkpoint_is_refused",)),
    Removal("P5-npz", "buffers.npz read with allow_pickle=True", "rl/core/checkpoint.py",
            "np.load(file, allow_pickle=False)", "np.load(file, allow_pickle=True)",
            (R + "test_no_code_execution.py::test_npz_with_an_object_array_as_replay_buffer_is_refused",)),
    Removal("P5-weights", "weights read with torch.load(weights_only=False)", "rl/core/checkpoint.py",
            "WEIGHTS: lambda p: stn.load_file(str(p))",
            "WEIGHTS: lambda p: __import__('torch').load(p, weights_only=False)",
            (R + "test_no_code_execution.py::test_pt_pickle_as_checkpoint_weights_is_refused_and_the_resume_uses"
                 "_the_previous_one",)),
    Removal("P5-yaml", "the manifest is also read by an unsafe YAML loader", "experiments/yaml_strict.py",
            "        nodes = list(yaml.compose_all(text, Loader=_Loader))",
            "        yaml.unsafe_load(text)\n        nodes = list(yaml.compose_all(text, Loader=_Loader))",
            (R + "test_no_code_execution.py::test_yaml_manifest_with_a_python_tag_is_refused",)),
    Removal("P5-sb3", "rl eval of an SB3 zip unpickles without --trust-pickle", "experiments/foreign.py",
            "        if trust_pickle:", "        if True:",
            (R + "test_no_code_execution.py::test_sb3_zip_with_a_cloudpickle_payload_is_refused",)),
    Removal("P6-contract", "no ContractCheck around the training envs", "experiments/session.py",
            "    return ContractCheck(envs, mode=spec.checks)", "    return envs",
            (R + "test_env_contract.py::test_env_fault_after_a_checkpoint_names_env_episode_and_step[nan_reward]",
             R + "test_env_contract.py::test_env_fault_after_a_checkpoint_names_env_episode_and_step"
                 "[obs_out_of_space]")),
    Removal("P6-finite", "non-finite weights are checkpointed", "experiments/session.py",
            'if arr.dtype.kind == "f" and not np.isfinite(arr).all():', "if False:",
            (R + "test_env_contract.py::test_non_finite_weights_are_never_checkpointed[4-kept0]",)),
    Removal("P6-check-env", "rl check-env ignores warnings", "envs/checks.py",
            "    return warned + problems", "    return problems",
            (R + "test_env_contract.py::test_check_env_fails_on_each_fault_at_step_1[inf_reward]",)),
    Removal("P7-duplicate", "duplicate manifest keys accepted (last wins)", "experiments/yaml_strict.py",
            "        if key in out:", "        if False:",
            ("tests/integration/test_cli_errors.py::test_bad_manifest",)),
    Removal("P9-inside", "run directories are not resolved against the runs root", "experiments/run_dir.py",
            "if not _inside(runs_dir, group) or not _inside(runs_dir, path):", "if False:",
            (R + "test_paths.py::test_run_id_symlinked_outside_is_refused_even_with_force",)),
    Removal("P9-run-id", "run ids are not validated", "experiments/run_dir.py",
            'if not NAME_RE.fullmatch(run_id) or ".." in run_id:', "if False:",
            (R + "test_paths.py::test_bad_run_id_is_refused_and_nothing_is_written",)),
    Removal("P9-newline", "run ids matched with re.match and '$' again (a trailing newline passes)",
            "experiments/run_dir.py", 'if not NAME_RE.fullmatch(run_id) or ".." in run_id:',
            'if not __import__("re").match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", run_id) or ".." in run_id:',
            (R + "test_paths.py::test_bad_run_id_is_refused_and_nothing_is_written[trailing_newline]",)),
    Removal("P9-symlink", "--resume does not refuse symlinked entries of the run", "experiments/train.py",
            "    check_run_entries(run_dir)  # before anything reads, locks or writes through a symlinked entry\n",
            "",
            (R + "test_paths.py::test_resume_never_writes_through_a_symlink_out_of_the_run[checkpoints]",
             R + "test_paths.py::test_resume_never_writes_through_a_symlink_out_of_the_run[final]")),
    Removal("P10-prune", "old checkpoints pruned before the new one is saved", "rl/core/checkpoint.py",
            "        _write_staging(staging, step, parts)\n",
            "        if keep_last is not None:\n            _prune(root, max(keep_last - 1, 1), final)\n"
            "        _write_staging(staging, step, parts)\n",
            (R + "test_io_faults.py::test_disk_full_during_a_save_keeps_earlier_checkpoints_and_stops",)),
    Removal("P10-temp", "a failed save leaves its staging directory", "rl/core/checkpoint.py",
            "        shutil.rmtree(staging, ignore_errors=True)\n        if os.path.lexists(aside)",
            "        if os.path.lexists(aside)",
            (R + "test_io_faults.py::test_disk_full_during_a_save_keeps_earlier_checkpoints_and_stops",
             R + "test_io_faults.py::test_fsync_failure_during_a_save_is_a_failed_save")),
    Removal("P10-errno", "save errors do not name the errno", "rl/core/checkpoint.py",
            'return f"{e.strerror} [{errno.errorcode.get(e.errno, e.errno)}]"', 'return "I/O error"',
            (R + "test_io_faults.py::test_disk_full_during_a_save_keeps_earlier_checkpoints_and_stops",
             R + "test_io_faults.py::test_read_only_checkpoints_directory_fails_the_save_and_stops")),
    Removal("P10-stop", "training goes on after a failed save", "experiments/loops/onpolicy.py",
            '            session.save_checkpoint({"sampler_rng": generator_state(sampler.rng)})\n',
            '            try:\n                session.save_checkpoint({"sampler_rng": generator_state(sampler.rng)})\n'
            "            except Exception:\n                pass\n",
            (R + "test_io_faults.py::test_read_only_checkpoints_directory_fails_the_save_and_stops",
             R + "test_io_faults.py::test_fsync_failure_during_a_save_is_a_failed_save")),
    Removal("P10-metrics-path", "a failed metrics.csv write does not name the file", "rl/core/metrics.py",
            "            return OSError(err.errno, err.strerror, str(self.path))", "            return err",
            (R + "test_io_faults.py::test_metrics_write_failure_stops_the_run_before_the_next_checkpoint",)),
    Removal("P10-lock", "an unwritable run directory escapes RunLock as a bare OSError", "experiments/run_dir.py",
            "        except OSError as err:\n            raise RunDirError(f\"{self.path}: cannot open",
            "        except ZeroDivisionError as err:\n            raise RunDirError(f\"{self.path}: cannot open",
            (R + "test_io_faults.py::test_read_only_run_directory_is_refused_before_training",)),
    Removal("P10-mkdir", "an unwritable runs directory escapes new_run_dir as a bare OSError", "experiments/run_dir.py",
            "    except OSError as err:\n        raise RunDirError(f\"{err.filename or path}: cannot create",
            "    except ZeroDivisionError as err:\n        raise RunDirError(f\"{err.filename or path}: cannot create",
            (R + "test_io_faults.py::test_read_only_runs_directory_is_refused_before_anything_is_written",)),
    Removal("P10-oserror", "the CLI lets an OSError (disk full writing metrics.csv) out as a traceback",
            "experiments/cli.py", "        if isinstance(err, OSError) and err.errno is not None:", "        if False:",
            (R + "test_io_faults.py::test_metrics_write_failure_stops_the_run_before_the_next_checkpoint",)),
    Removal("P3-metrics-error", "MetricsFileError is not a user error (a traceback)", "experiments/cli.py",
            '"SB3ConfigError",\n             "MetricsFileError"}', '"SB3ConfigError"}',
            (R + "test_broken_files.py::test_a_damaged_metrics_row_before_the_checkpoint_is_refused",)),
    Removal("P11-skip", "--resume does not skip a broken newest checkpoint", "rl/core/checkpoint.py",
            "            skipped.append((path, str(e)))", "            raise",
            (R + "test_broken_files.py::test_resume_skips_a_broken_newest_checkpoint_says_why_and_ends_identical",)),
    Removal("P11-restart", "no verified checkpoint: silently start from scratch", "experiments/session.py",
            "        if found is None:\n", "        if found is None:\n            return None\n",
            (R + "test_broken_files.py::test_all_checkpoints_broken_is_refused_and_nothing_restarts",)),
    Removal("P11-algo", "a checkpoint of another algorithm is not recognised", "experiments/session.py",
            'if st.get("algo") != self.manifest.agent.algo:', "if False:",
            (R + "test_broken_files.py::test_checkpoint_from_another_algorithm_or_configuration_is_refused",)),
    Removal("P11-final", "rl eval reads final/ without checking its sha256", "experiments/evaluate_run.py",
            "        weights, meta = ckpt.load_final_policy(final)",
            '        weights = __import__("safetensors.numpy").numpy.load_file(str(final / "policy.safetensors"))\n'
            '        meta = __import__("json").loads((final / "policy.json").read_text())',
            (R + "test_broken_files.py::test_eval_refuses_a_damaged_final_policy[data_bit_flip]",)),
    Removal("P1-final-cleanup", "the staged copy of a killed final/ save is left behind on resume",
            "experiments/session.py", "        ckpt.cleanup_stale(self.run_dir)  # a final/ save killed mid-publish\n",
            "",
            (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
                 "[ppo-final_before_replace-final]",)),
    Removal("P2-offline", "offline-to-online resume does not restore the sampler generator",
            "experiments/loops/offline.py", 'restore_generator(self.sampler.rng, st["sampler_rng"])', "pass",
            (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
                 "[offline-before_replace-400]",)),
    Removal("P2-phase", "offline-to-online resume restarts the phase schedule", "experiments/loops/offline.py",
            'self.pos = PhasePosition(**st["phase"])', "pass",
            (R + "test_kill.py::test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical"
                 "[offline-between_components-None]",)),
    Removal("P2s-stop", "SIGTERM / Ctrl-C stop at once instead of at the next checkpoint", "experiments/train.py",
            "        if self.signum is not None or target is None or target >= self.total_steps:",
            "        if True:",
            (R + "test_signals.py::test_a_signal_stops_at_the_next_checkpoint_which_resumes_exactly",)),
    Removal("P6-shape", "no per-sub-env observation shape/dtype check before batching", "experiments/session.py",
            '        return SubEnvObsCheck(env, index, strict_dtype=spec.checks == "error")', "        return env",
            (R + "test_env_contract.py::test_env_fault_after_a_checkpoint_names_env_episode_and_step[wrong_shape]",
             R + "test_env_contract.py::test_env_fault_after_a_checkpoint_names_env_episode_and_step[wrong_dtype]")),
    Removal("P6-action", "no check for non-finite actions", "envs/checks.py",
            "        if self._float_actions and not np.isfinite(actions).all():", "        if False:",
            (R + "test_env_contract.py::test_nan_action_of_a_continuous_policy_is_blamed_on_the_policy",)),
    Removal("P8-resume", "--resume does not verify the dataset before touching the run", "experiments/train.py",
            "    preflight(manifest)  # e.g. a dataset changed since the start: refused before the run is touched\n",
            "",
            (R + "test_broken_files.py::test_a_damaged_dataset_is_refused_before_a_resume_touches_the_run[bit_flip]",)),
    Removal("P13-future", "a newer-format checkpoint is skipped (then overwritten)", "rl/core/checkpoint.py",
            '            if getattr(e, "future_version", None) is not None:\n                raise\n', "",
            (R + "test_broken_files.py::test_checkpoint_of_a_newer_format_is_refused_not_skipped",)),
    Removal("P12-eval-writes", "rl eval writes into the run", "experiments/evaluate_run.py",
            "    manifest, agent, label = load_policy_agent(run, checkpoint)\n",
            "    manifest, agent, label = load_policy_agent(run, checkpoint)\n"
            '    (Path(run) / "eval.log").write_text("x")\n',
            ("tests/integration/test_cli_train.py::test_eval_json_is_read_only_and_repeatable",)),
    Removal("P4-seed", "the run seed is ignored", "rl/core/seeding.py",
            "np.random.SeedSequence(self.seed, spawn_key=", "np.random.SeedSequence(0, spawn_key=",
            ("tests/integration/test_cli_train.py::test_same_seed_identical_other_seed_different",)),
]


def _scratch() -> Path:
    root = Path(tempfile.mkdtemp(prefix="rlsuite-removal-"))

    def keep(info: tarfile.TarInfo):
        parts = Path(info.name).parts
        return None if any(p in (".venv", ".git", "__pycache__", "runs", ".pytest_cache") for p in parts) else info

    with tempfile.TemporaryFile() as buf:
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(REPO, arcname=".", filter=keep)
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(root, filter="data")
    return root


def run(removal: Removal) -> tuple[str, str]:
    scratch = _scratch()
    try:
        target = scratch / removal.path
        text = target.read_text()
        if text.count(removal.old) != 1:
            return "STALE", f"the protected text occurs {text.count(removal.old)} times in {removal.path}"
        target.write_text(text.replace(removal.old, removal.new))
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                              "--basetemp", str(scratch / ".tmp"), *removal.tests],
                             cwd=scratch, capture_output=True, text=True, timeout=900)
        last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-200:]
        failed = re.search(r"(\d+) failed", last)  # a failed assertion, not an error in setup or collection
        why = next((ln[2:].strip() for ln in res.stdout.splitlines() if ln.startswith("E ")), "")
        return ("FAILS" if res.returncode != 0 and failed else "PASSES"), f"{last}; {why[:160]}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(keys: list[str]) -> int:
    chosen = [r for r in REMOVALS if not keys or r.key in keys]
    bad = 0
    for removal in chosen:
        t0 = time.perf_counter()
        verdict, detail = run(removal)
        bad += verdict != "FAILS"
        print(f"{removal.key:18s} {verdict:6s} {time.perf_counter() - t0:5.0f}s  {removal.what}  [{detail}]",
              flush=True)
    print(f"{len(chosen) - bad}/{len(chosen)} removals caught by their tests")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
