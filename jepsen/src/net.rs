//! Real network partitions for the harness: every process of a run (each
//! metadata node, chunk server and client) lives in a network namespace of
//! its own, a "host" with one address, joined to the others by a veth pair
//! on a bridge inside a switch namespace. A link is cut by a firewall rule
//! in the sending host (`iptables -A OUTPUT -d <peer> -j DROP`), so a cut
//! drops the packets of new and existing connections alike, in one
//! direction or both, and a heal removes the rules. Nothing in the product
//! changes: processes are started inside their host (`ip netns exec`) and
//! given the peers' addresses as configuration.
//!
//! Every namespace and address belongs to the run that made it (names
//! carry the run's id; addresses are 10.77.0.x inside its own bridge), and
//! dropping the [`Network`] deletes them. Needs root, `ip` (iproute2) and
//! `iptables`; `.ci/run` installs the packages.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why the network could not be built or changed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot run {program}: {source} (is it installed? the harness needs iproute2 and iptables, and root)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("host {host} does not exist (the network has {hosts})")]
    NoSuchHost { host: usize, hosts: usize },
}

/// Networks made by this process so far (for unique names).
static RUNS: AtomicU32 = AtomicU32::new(0);

/// A switch and `hosts` hosts, numbered from 0.
pub struct Network {
    /// The prefix of every namespace name of this run.
    prefix: String,
    hosts: usize,
}

fn run(program: &str, args: &[&str]) -> Result<Output, NetError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| NetError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(NetError::Failed {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

impl Network {
    /// Builds the switch and the hosts; host `i` has address
    /// `10.77.0.(i + 1)`.
    pub fn create(hosts: usize) -> Result<Network, NetError> {
        assert!(hosts < 250, "at most 250 hosts");
        let run_id = RUNS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("tfs{}x{run_id}", std::process::id() % 100_000);
        let network = Network { prefix, hosts };
        network.build()?;
        Ok(network)
    }

    fn switch(&self) -> String {
        format!("{}s", self.prefix)
    }

    fn namespace(&self, host: usize) -> String {
        format!("{}h{host}", self.prefix)
    }

    fn build(&self) -> Result<(), NetError> {
        let switch = self.switch();
        run("ip", &["netns", "add", &switch])?;
        run(
            "ip",
            &["-n", &switch, "link", "add", "br0", "type", "bridge"],
        )?;
        run("ip", &["-n", &switch, "link", "set", "br0", "up"])?;
        for host in 0..self.hosts {
            let ns = self.namespace(host);
            let port = format!("p{host}");
            let addr = format!("{}/24", self.ip(host));
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            )?;
            run(
                "ip",
                &["-n", &switch, "link", "set", &port, "master", "br0", "up"],
            )?;
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// Host `host`'s address.
    pub fn ip(&self, host: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, host as u8 + 1)
    }

    fn check(&self, host: usize) -> Result<(), NetError> {
        if host < self.hosts {
            Ok(())
        } else {
            Err(NetError::NoSuchHost {
                host,
                hosts: self.hosts,
            })
        }
    }

    /// A command that runs `program` inside host `host`.
    pub fn command(&self, host: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace(host)])
            .arg(program);
        command
    }

    /// Moves the calling thread into host `host`: sockets it opens from
    /// now on belong to that host (for a client run inside the test
    /// process, on a thread of its own).
    pub fn enter(&self, host: usize) -> Result<(), NetError> {
        use std::os::fd::AsRawFd;
        self.check(host)?;
        let path = format!("/var/run/netns/{}", self.namespace(host));
        let file = std::fs::File::open(&path).map_err(|source| NetError::Spawn {
            program: path.clone(),
            source,
        })?;
        // SAFETY: setns on a valid namespace descriptor affects only the
        // calling thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(NetError::Failed {
                command: format!("setns {path}"),
                stderr: std::io::Error::last_os_error().to_string(),
            })
        }
    }

    fn iptables(&self, host: usize, args: &[&str]) -> Result<(), NetError> {
        let ns = self.namespace(host);
        let mut all = vec!["netns", "exec", &ns, "iptables", "-w"];
        all.extend_from_slice(args);
        run("ip", &all).map(|_| ())
    }

    /// Drops every packet `from` sends to `to` (one direction).
    pub fn cut(&self, from: usize, to: usize) -> Result<(), NetError> {
        self.check(from)?;
        self.check(to)?;
        let peer = self.ip(to).to_string();
        self.iptables(from, &["-A", "OUTPUT", "-d", &peer, "-j", "DROP"])
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&self, a: usize, b: usize) -> Result<(), NetError> {
        self.cut(a, b)?;
        self.cut(b, a)
    }

    /// Cuts both directions between every host of `side` and every host
    /// outside it.
    pub fn partition(&self, side: &[usize]) -> Result<(), NetError> {
        for &a in side {
            for b in (0..self.hosts).filter(|b| !side.contains(b)) {
                self.cut_both(a, b)?;
            }
        }
        Ok(())
    }

    /// Cuts `host` from each of `peers`, both ways.
    pub fn isolate_from(&self, host: usize, peers: &[usize]) -> Result<(), NetError> {
        for &peer in peers {
            self.cut_both(host, peer)?;
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), NetError> {
        for host in 0..self.hosts {
            self.iptables(host, &["-F", "OUTPUT"])?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in 0..self.hosts {
            let _ = run("ip", &["netns", "del", &self.namespace(host)]);
        }
        let _ = run("ip", &["netns", "del", &self.switch()]);
    }
}
