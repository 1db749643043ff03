//! The CLI on a real terminal (tmux): `toastyfs dev` prints its banner and
//! stops on Ctrl-C, a put from a pipe shows a spinner with bytes and rate
//! while it runs (the bytes committed so far: 64 KiB chunks here, so the
//! first windows commit before the pipe pauses), and a put's last line
//! states bytes, time and rate with no progress bar left behind.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::wait_for;

/// A tmux session on its own server socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path) -> Tmux {
        let socket = dir.join("tmux.sock").display().to_string();
        let tmux = Tmux { socket };
        tmux.run(&["new-session", "-d", "-s", "t", "-x", "160", "-y", "50"]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()
            .expect("run tmux (Debian package tmux)");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `line` and Enter into window `window`.
    fn type_line(&self, window: &str, line: &str) {
        self.run(&["send-keys", "-t", window, "-l", line]);
        self.run(&["send-keys", "-t", window, "Enter"]);
    }

    fn screen(&self, window: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", window])
    }

    async fn wait_screen(&self, window: &str, what: &str, found: impl Fn(&str) -> bool) -> String {
        wait_for(what, Duration::from_secs(60), || async {
            let screen = self.screen(window);
            found(&screen).then_some(screen)
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .output();
    }
}

/// A base port whose dev ports (+1..=+3, +11..=+13, +20) are free now.
fn free_base_port() -> u16 {
    for _ in 0..100 {
        let base = toastyfs_jepsen::cluster::free_port().saturating_sub(1);
        if !(1024..65_500).contains(&base) {
            continue;
        }
        let free = [1u16, 2, 3, 11, 12, 13, 20]
            .iter()
            .all(|o| std::net::TcpListener::bind(("127.0.0.1", base + o)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free range of ports for dev");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_and_a_put_on_a_real_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().display().to_string();
    let binary = crate::harness::binary().display().to_string();
    let base = free_base_port();
    let tmux = Tmux::start(dir.path());
    let env = format!("env -u TOASTYFS_META HOME={home} XDG_CONFIG_HOME={home}/config");
    tmux.type_line(
        "t:0",
        &format!("{env} {binary} dev --dir {home}/dev --base-port {base}"),
    );
    tmux.wait_screen("t:0", "the dev banner", |s| {
        s.contains("dev cluster running")
    })
    .await;

    tmux.run(&["new-window", "-t", "t:1"]);
    let put_pipe = format!(
        "(head -c 3000000 /dev/zero; sleep 4; head -c 1000000 /dev/zero) | {env} {binary} put --chunk-size 65536 - /piped; echo put-done-$?"
    );
    tmux.type_line("t:1", &put_pipe);
    let spinning = tmux
        .wait_screen("t:1", "the spinner of a put from a pipe", |s| {
            s.lines()
                .any(|l| l.contains("MiB") && l.contains("/s") && !l.contains(" in "))
        })
        .await;
    let finished = |s: &str| s.lines().any(|l| l.starts_with("put-done-"));
    assert!(!finished(&spinning), "{spinning}");
    let done = tmux
        .wait_screen("t:1", "the put's last line", finished)
        .await;
    assert!(done.lines().any(|l| l == "put-done-0"), "{done}");
    assert!(done.contains("/piped: 3.81 MiB in "), "{done}");

    tmux.run(&["send-keys", "-t", "t:0", "C-c", ""]);
    let stopped = tmux
        .wait_screen("t:0", "dev to stop on Ctrl-C", |s| {
            s.contains("stopping the dev cluster")
        })
        .await;
    assert!(!stopped.contains("No such process"), "{stopped}");
}
