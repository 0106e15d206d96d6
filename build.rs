//! Records the git commit the binary is built from, for `hypercache-server --version`.
//! Outside a git checkout (a vendored Docker build), `HYPERCACHE_GIT_COMMIT` may be set by the
//! builder; otherwise the commit is `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HYPERCACHE_GIT_COMMIT");
    for f in [".git/HEAD", ".git/logs/HEAD"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    let commit = std::env::var("HYPERCACHE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let s = String::from_utf8(out.stdout).ok()?;
            out.status.success().then(|| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HYPERCACHE_GIT_COMMIT={commit}");
}
