//! The command line as a person uses it (issue 18): the commands a demo started with `--data-dir`
//! prints work as printed from another terminal, and so does the environment the error message
//! names; every `query` writes its table as CSV with `--csv`; logs written to a pipe or a file
//! carry no colour codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_valuetrace");

/// A `valuetrace` command with none of the connection variables of the test's own environment
/// and a home without a default demo directory, so that only what the test passes can find a
/// server.
fn clean_command(home: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("VALUETRACE_URL")
        .env_remove("VALUETRACE_READ_KEY")
        .env_remove("VALUETRACE_PROJECT")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("share"))
        .env("VALUETRACE_LOG", "warn")
        .current_dir(home);
    command
}

/// The same through `sh -c`, for a command line copied as printed.
fn shell(home: &Path, line: &str) -> Output {
    let mut command = Command::new("sh");
    command
        .args(["-c", line])
        .env_remove("VALUETRACE_URL")
        .env_remove("VALUETRACE_READ_KEY")
        .env_remove("VALUETRACE_PROJECT")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("share"))
        .env("VALUETRACE_LOG", "warn")
        .current_dir(home);
    command.output().expect("run sh")
}

fn assert_success(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what}: {}\n{}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

struct Demo {
    child: Child,
    stdout: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `valuetrace demo --data-dir <dir>` (one day, live traffic on) and waits for its
/// printed summary.
fn start_demo(work: &Path, data_dir: &Path) -> (Demo, String) {
    let stdout = work.join("demo.stdout");
    let child = Command::new(BIN)
        .args([
            "demo",
            "--days",
            "1",
            "--seed",
            "5",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("VALUETRACE_LOG", "warn")
        .current_dir(work)
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut demo = Demo { child, stdout };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let printed = std::fs::read_to_string(&demo.stdout).unwrap_or_default();
        if printed.contains("VALUETRACE_PROJECT=") && printed.contains("curl ") {
            return (demo, printed);
        }
        assert!(
            Instant::now() < deadline,
            "the demo printed no commands: {printed}"
        );
        assert!(
            demo.child.try_wait().expect("poll").is_none(),
            "the demo exited early: {printed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `query` command lines the demo printed.
fn printed_queries(printed: &str) -> Vec<String> {
    printed
        .lines()
        .map(str::trim)
        .filter(|line| line.contains(" query ") && !line.starts_with("Or "))
        .map(str::to_owned)
        .collect()
}

/// The tables of a printed answer, each from its top border to its bottom border.
fn tables_in(text: &str) -> Vec<String> {
    let mut tables = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('┌') {
            current = Some(String::new());
        }
        if let Some(table) = current.as_mut() {
            table.push_str(line);
            table.push('\n');
        }
        if line.starts_with('└') {
            tables.extend(current.take());
        }
    }
    tables
}

/// The rows of a comfy-table as text cells, header first.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| line.starts_with('│'))
        .map(|line| {
            let inner = line.trim_start_matches('│').trim_end_matches('│');
            inner
                .split('┆')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The records of a CSV document, header first.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|record| {
            record
                .unwrap_or_else(|error| panic!("not CSV ({error}): {text}"))
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// A table cell and its CSV field say the same: equal, or `–` left empty, or a number without
/// its thousands separators.
fn same_cell(table: &str, csv: &str) -> bool {
    table == csv || (table == "–" && csv.is_empty()) || table.replace(',', "") == csv
}

fn assert_csv_matches_table(what: &str, table: &str, csv: &str) {
    let table = table_rows(table);
    let csv = csv_rows(csv);
    assert!(table.len() > 2, "{what}: a table with rows: {table:?}");
    assert_eq!(table.len(), csv.len(), "{what}: rows\n{table:?}\n{csv:?}");
    for (table_row, csv_row) in table.iter().zip(&csv) {
        assert_eq!(
            table_row.len(),
            csv_row.len(),
            "{what}: {table_row:?} vs {csv_row:?}"
        );
        for (t, c) in table_row.iter().zip(csv_row) {
            assert!(
                same_cell(t, c),
                "{what}: table `{t}` vs CSV `{c}` in {csv_row:?}"
            );
        }
    }
}

/// Issue 18 points 12 and 14: a demo in a chosen data directory is found by the commands it
/// prints (run from another directory, without its environment), by the environment variables
/// the CLI's message names, and every printed query also answers as CSV that matches its table.
#[test]
fn a_demo_in_a_data_dir_answers_the_commands_it_prints_and_csv_matches_the_tables() {
    let work = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("my demo");
    let (demo, printed) = start_demo(work.path(), &data_dir);
    let queries = printed_queries(&printed);
    assert!(queries.len() >= 15, "{printed}");

    // As printed, from another directory, with a home that has no default demo.
    for line in &queries {
        let stdout = assert_success(line, &shell(elsewhere.path(), line));
        assert!(!stdout.trim().is_empty(), "{line}: no output");
    }

    // The environment the error message names.
    let export = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("export "))
        .expect("export line");
    let mut with_env = clean_command(elsewhere.path());
    for pair in export.split_whitespace() {
        let (name, value) = pair.split_once('=').expect("NAME=value");
        with_env.env(name, value);
    }
    let output = with_env
        .args(["query", "endpoints", "--since", "1d"])
        .output()
        .expect("query with the environment");
    assert!(assert_success("env form", &output).contains("/api/checkout"));
    let without_project = clean_command(elsewhere.path())
        .env("VALUETRACE_URL", "http://127.0.0.1:9")
        .env("VALUETRACE_READ_KEY", "vt_read_x")
        .args(["query", "endpoints"])
        .output()
        .expect("query without a project");
    let message = String::from_utf8_lossy(&without_project.stderr);
    assert!(
        !without_project.status.success() && message.contains("VALUETRACE_PROJECT"),
        "{message}"
    );
    let help = clean_command(elsewhere.path())
        .args(["query", "endpoints", "--help"])
        .output()
        .expect("help");
    let help = assert_success("help", &help);
    let project_help = help
        .lines()
        .skip_while(|line| !line.contains("--project"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(project_help.contains("Project id"), "{help}");

    // Every printed query as CSV: one parseable table with a header row.
    for line in &queries {
        let command = line.split("   # ").next().expect("command");
        if command.contains(" --csv") {
            continue;
        }
        let stdout = assert_success(
            &format!("{command} --csv"),
            &shell(elsewhere.path(), &format!("{command} --csv")),
        );
        let rows = csv_rows(&stdout);
        assert!(!rows.is_empty(), "{command} --csv: {stdout}");
    }

    // On a window that live traffic no longer changes, the CSV has the table's rows.
    let to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 20 * 60_000;
    let from = to - 12 * 3_600_000;
    let window = [
        "--from".to_owned(),
        from.to_string(),
        "--to".to_owned(),
        to.to_string(),
    ];
    let funnel = [
        "--step",
        "GET /api/products",
        "--step",
        "POST /api/checkout",
    ];
    // (command, its arguments, the table --csv names, that table's place in the printed output)
    let cases: [(&str, &[&str], Option<&str>, usize); 5] = [
        ("endpoints", &[], None, 0),
        ("impact", &[], None, 0),
        ("errors", &[], None, 0),
        ("errors", &[], Some("patterns"), 2),
        ("funnel", &funnel, None, 0),
    ];
    for (command, args, csv_name, place) in cases {
        let run = |csv: bool| {
            let mut query = clean_command(elsewhere.path());
            query
                .args(["query", command])
                .args(&window)
                .args(args)
                .arg("--data-dir")
                .arg(&data_dir);
            if csv {
                query.arg("--csv").args(csv_name);
            }
            assert_success(command, &query.output().expect("query"))
        };
        let printed = run(false);
        let tables = tables_in(&printed);
        let table = tables
            .get(place)
            .unwrap_or_else(|| panic!("{command}: no table {place} in {printed}"));
        assert_csv_matches_table(&format!("{command} {csv_name:?}"), table, &run(true));
    }
    let csv = assert_success(
        "endpoints csv",
        &clean_command(elsewhere.path())
            .args(["query", "endpoints", "--csv"])
            .args(&window)
            .arg("--data-dir")
            .arg(&data_dir)
            .output()
            .expect("query"),
    );
    let rows = csv_rows(&csv);
    let requests = rows[0]
        .iter()
        .position(|h| h == "requests")
        .expect("column");
    let total: u64 = rows[1..]
        .iter()
        .map(|row| {
            row[requests]
                .parse::<u64>()
                .expect("requests is an integer")
        })
        .sum();
    assert!(total > 1_000, "{csv}");
    drop(demo);
}

/// Issue 18 point 15: `valuetrace serve` writing its log to a pipe or a file writes no ANSI
/// colour codes.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = common::free_address();
    let config = common::write_config(dir.path(), address);
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("VALUETRACE_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start valuetrace serve");
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(
        common::request(address, "GET", "/readyz", None, &[]),
        Ok((200, _))
    ) {
        assert!(Instant::now() < deadline, "server did not become ready");
        assert!(child.try_wait().expect("poll").is_none(), "server exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A wholly invalid batch too, so that the ingest path has its say.
    let _ = common::request(
        address,
        "POST",
        "/v1/batch",
        Some(common::INGEST_KEY),
        b"[42]",
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut log)
        .expect("read the log");
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "{exit}: {log}");
    assert!(log.contains("INFO"), "the server logged at info: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
}
