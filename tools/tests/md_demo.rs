//! `md-demo` (the README's "run it" command) passes its own verification: a short run on the
//! loopback, no root needed.

use std::process::Command;

#[test]
fn md_demo_verifies_every_subscriber() {
    let port = 26_000 + (std::process::id() % 1_900) as u16;
    let out = Command::new(env!("CARGO_BIN_EXE_md-demo"))
        .args([
            "--duration",
            "2",
            "--rate",
            "20000",
            "--port",
            &port.to_string(),
            "--quiet",
        ])
        .output()
        .expect("run md-demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "md-demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS: every subscriber got exactly the quotes of its prefixes"),
        "{stdout}"
    );
    assert_eq!(stdout.matches(" PASS ").count(), 3, "{stdout}");
}
