//! The relayer under measurement as its own process: `relayd start` (or Hermes) spawned with its output in a log
//! and sampled every 100 ms from `/proc`, so the RSS, threads and descriptors the scale harness reports are the
//! relayer's own, not the in-process chains'.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub fn relayd_bin() -> PathBuf {
    std::env::var_os("RELAYD_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/relayd"),
        PathBuf::from,
    )
}

/// One reading of a process's memory, threads and descriptors.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sample {
    pub rss_mb: u64,
    pub hwm_mb: u64,
    pub threads: u64,
    pub fds: u64,
}

impl Sample {
    pub fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(Self {
            rss_mb: field("VmRSS:") / 1024,
            hwm_mb: field("VmHWM:") / 1024,
            threads: field("Threads:"),
            fds,
        })
    }

    pub fn max(self, o: Self) -> Self {
        Self {
            rss_mb: self.rss_mb.max(o.rss_mb),
            hwm_mb: self.hwm_mb.max(o.hwm_mb),
            threads: self.threads.max(o.threads),
            fds: self.fds.max(o.fds),
        }
    }

    pub fn show(self) -> String {
        format!(
            "RSS {} MB, threads {}, fds {}",
            self.rss_mb, self.threads, self.fds
        )
    }
}

/// A relayer process (relayd, or Hermes in phase 2b), sampled while it runs.
pub struct Relayer {
    pub child: Child,
    pub started: Instant,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<Sample>,
}

impl Relayer {
    pub fn start(config: &Path, log: &Path) -> Self {
        let mut cmd = Command::new(relayd_bin());
        cmd.env(
            "RUST_LOG",
            std::env::var("SCALE_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .args(["--log-format", "text", "-c"])
        .arg(config)
        .arg("start");
        Self::spawn(cmd, log)
    }

    /// Runs `cmd` with its output in `log` and samples it every 100 ms.
    pub fn spawn(mut cmd: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("the relayer starts");
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let pid = child.id();
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = Sample::default();
            while !flag.load(Ordering::Relaxed) {
                if let Some(s) = Sample::of(pid) {
                    peak = peak.max(s);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        Self {
            child,
            started,
            stop,
            sampler,
        }
    }

    pub fn now(&self) -> Sample {
        Sample::of(self.child.id()).unwrap_or_default()
    }

    /// SIGTERM, as a service manager stops it; returns the peaks seen while it ran.
    pub fn stop(mut self) -> Sample {
        let last = self.now();
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.sampler.join().expect("sampler").max(last);
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        peak
    }
}
