//! Rules of the suite itself (docs/development.md, "Keeping tests deterministic"), checked on
//! its source, so that a new instance fails here every time rather than in CI one day in ten.

use std::path::Path;

/// A `sleep` used to let something happen passes on a fast machine and fails on a loaded one.
/// The few that are not synchronisation (the pause inside a polling loop, a crash test's random
/// moment) say so on the line above; any other is refused.
#[test]
fn every_sleep_in_the_tests_says_why_it_is_not_synchronisation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let sleep = concat!("sle", "ep(");
    let mut unexplained = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/api") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a test source");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.contains(sleep) || line.trim_start().starts_with("//") {
                continue;
            }
            let said = lines[i.saturating_sub(2)..i]
                .iter()
                .any(|l| l.contains("Not synchronisation:"));
            if !said {
                unexplained.push(format!("{}:{}", path.display(), i + 1));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "sleeps that may be synchronisation (wait for a state with wait_until, or move the \
         server's clock; see docs/development.md): {unexplained:?}"
    );
}
