//! Records the git commit the binary is built from, for
//! `tracebridge_build_info{commit}` and `tracebridge version`. Builds
//! outside a git checkout (e.g. a container build without `.git`) say
//! "unknown", unless `TB_GIT_COMMIT` is set.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TB_GIT_COMMIT");
    // HEAD and the branch it points to (a worktree keeps them elsewhere).
    for path in ["HEAD", "refs/heads"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = std::env::var("TB_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TB_GIT_COMMIT={commit}");
}

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
