//! The durability promise, end to end: the crash-loop harness (`valuetrace-chaos`) SIGKILLs the
//! real server again and again under load — during start-up and WAL replay, mid-load, while a
//! Parquet file is written, just after a persist — and then checks that every acknowledged event
//! is stored exactly once, that re-sent acknowledged batches are not counted again, that the
//! query API counts each event once and that the server still accepts writes.
//!
//! CI runs 20 kills. The full run (≥ 200 kills) is:
//! `cargo build --release -p valuetrace --bins && target/release/valuetrace-chaos --kills 200 --seed 1`.
//! `VALUETRACE_CRASH_KILLS` and `VALUETRACE_CRASH_SEED` override the kill count and the seed.

use std::process::Command;

#[test]
fn crash_loop_loses_no_acknowledged_event_and_stores_each_once() {
    let setting = |name: &str, default: u64| -> String {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(default)
            .to_string()
    };
    let output = Command::new(env!("CARGO_BIN_EXE_valuetrace-chaos"))
        .args(["--kills", &setting("VALUETRACE_CRASH_KILLS", 20)])
        .args(["--seed", &setting("VALUETRACE_CRASH_SEED", 20)])
        .args(["--clients", "3", "--rate", "1500", "--max-delay-ms", "1500"])
        .arg("--server-bin")
        .arg(env!("CARGO_BIN_EXE_valuetrace"))
        .output()
        .expect("run valuetrace-chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown with `--nocapture`, and with the failure.
    println!("{stderr}{stdout}");
    assert!(
        output.status.success(),
        "valuetrace-chaos exited with {}:\n{stdout}",
        output.status
    );
    let summary = stdout
        .lines()
        .find(|line| line.starts_with("valuetrace-chaos: PASS"))
        .expect("a PASS summary line");
    for clean in ["lost=0", "double_counted=0", "unknown=0"] {
        assert!(summary.contains(clean), "{summary}");
    }
    let acked: u64 = summary
        .split_whitespace()
        .find_map(|word| word.strip_prefix("acked_ids="))
        .and_then(|value| value.parse().ok())
        .expect("acked_ids in the summary");
    assert!(
        acked > 5_000,
        "the load should have acknowledged a real volume, got {acked}"
    );
}
