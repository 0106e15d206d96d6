//! `hypercache-server`: the operator commands (`--help`, `--version`,
//! `check-config`), then environment → Config, logging, panic hook, signals,
//! `server::run`. See `lib.rs` for the architecture.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hypercache::config::{level_name, Config};
use hypercache::server;
use hypercache::tls::TlsSet;

/// mimalloc for small blocks, glibc for large ones (`base/alloc.rs` says why).
#[global_allocator]
static ALLOC: hypercache::base::alloc::SplitAlloc = hypercache::base::alloc::SplitAlloc;

/// Runs before `main` and before the first allocation (the runtime allocates before `main`, and
/// mimalloc reserves its first arena then): `base::alloc::configure`.
#[used]
#[link_section = ".init_array"]
static CONFIGURE_ALLOC: extern "C" fn() = configure_alloc;

extern "C" fn configure_alloc() {
    hypercache::base::alloc::configure();
}

fn die(code: i32, msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(code);
}

/// Standard output for the operator commands; a closed pipe (`| head`) is not an error.
fn out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

fn prefixed(msg: String) -> String {
    if msg.starts_with("hypercache-server: ") {
        msg
    } else {
        format!("hypercache-server: {msg}")
    }
}

/// A panic anywhere takes the whole process down: a shard never dies alone.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("?");
        log::error!("panic on thread {name}: {info}; aborting the process");
        eprintln!("hypercache-server: panic on thread {name}: {info}");
        std::process::abort();
    }));
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-mask calls on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        // SIGHUP never terminates (security.md §4): it asks for a TLS reload.
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for SIGTERM/SIGINT (a SIGHUP reloads the TLS material and is waited past); with a
/// timeout, None once it has passed.
/// Interrupted waits (EINTR) resume with the remaining time.
fn wait_signal(
    set: &libc::sigset_t,
    timeout: Option<Duration>,
    tls: &hypercache::tls::TlsSet,
) -> Option<i32> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        // SAFETY: sigwait/sigtimedwait on a set we own.
        let r = unsafe {
            match deadline {
                None => {
                    let mut sig = 0;
                    if libc::sigwait(set, &mut sig) == 0 {
                        sig
                    } else {
                        -1
                    }
                }
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    let ts = libc::timespec {
                        tv_sec: left.as_secs() as libc::time_t,
                        tv_nsec: left.subsec_nanos() as libc::c_long,
                    };
                    libc::sigtimedwait(set, std::ptr::null_mut(), &ts)
                }
            }
        };
        if r == libc::SIGHUP {
            // security.md §4: reload every TLS listener's files on this thread (file reads
            // never run on an executor); each core picks the new material up at its next accept.
            for (level, line) in tls.reload_all() {
                log::log!(level, "{line}");
            }
            continue;
        }
        if r > 0 {
            return Some(r);
        }
    }
}

/// The version and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HYPERCACHE_GIT_COMMIT"),
    ")"
);

/// What the command line asks for. Configuration itself never comes from arguments (ops.md §2.1).
enum Command {
    Serve,
    CheckConfig,
}

fn command() -> Command {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Command::Serve,
        ["check-config"] => Command::CheckConfig,
        ["--help" | "-h" | "help"] => {
            out(&hypercache::config::table::help_text(VERSION));
            std::process::exit(0);
        }
        ["--version" | "-V" | "version"] => {
            out(&format!("hypercache-server {VERSION}\n"));
            std::process::exit(0);
        }
        _ => die(
            2,
            &format!(
                "hypercache-server: unknown arguments {args:?}: configuration comes from HYPERCACHE_* \
                 environment variables; the commands are check-config, --help and --version"
            ),
        ),
    }
}

/// Pins glibc's mmap threshold at its initial 128 KiB. By default glibc raises the threshold to
/// the size of every mmapped block that is freed, so once the store has released one 1 MiB log
/// segment, later segments come from the heap, where small allocations (tombstone keys, request
/// buffers) split the holes segments leave and RSS creeps up over hours of churn. With the
/// threshold fixed, every segment and index table is its own mapping and goes back to the kernel
/// when released (`scripts/bench/rss_bound.sh` measures the difference).
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(
            libc::M_MMAP_THRESHOLD,
            hypercache::base::alloc::LARGE as i32,
        );
    }
}

fn main() {
    pin_mmap_threshold();
    let cmd = command();
    let vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let affinity: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let hostname = hostname();
    let config = match Config::from_vars(&vars, &affinity, hostname.as_deref())
        .and_then(|mut c| {
            c.load_tls().map_err(|e| vec![e])?;
            c.load_policy().map_err(|e| vec![e])?;
            Ok(c)
        })
        .and_then(|mut c| {
            // Discovery and keys before any listener is bound (security.md §7); check-config
            // validates without contacting anything.
            if !matches!(cmd, Command::CheckConfig) {
                c.start_oidc().map_err(|e| vec![e])?;
            }
            Ok(c)
        }) {
        Ok(c) => c,
        Err(errors) => {
            let code = errors.first().map_or(2, |e| e.exit_code);
            for e in errors {
                eprintln!("{}", prefixed(e.message));
            }
            std::process::exit(code);
        }
    };
    if let Command::CheckConfig = cmd {
        check_config(&config);
    }
    hypercache::runtime::logging::init(config.log_level, config.log_format, config.node_id.clone());
    install_panic_hook();
    if !config.auth_on() {
        log::warn!(
            "HYPERCACHE_AUTH_TOKEN is empty: every listener is open to anyone who can reach it"
        );
    } else if config.auth_token.is_none() && config.tls.dist.is_none() {
        log::warn!(
            "the dist listener is open: set HYPERCACHE_AUTH_TOKEN (peer token) or HYPERCACHE_DIST_TLS_*"
        );
    }
    let any_tls = config.tls.client.is_some() || config.tls.mgmt.is_some();
    if let Some(p) = &config.policy {
        for w in p.warnings(any_tls) {
            log::warn!("{w}");
        }
    }
    for v in &config.unknown_vars {
        log::warn!("unknown variable {v} ignored");
    }
    let set = block_signals();
    let summary = StartSummary::of(&config);
    let tls = config.tls.clone();
    let handle = match server::run(config) {
        Ok(h) => h,
        Err(e) => die(e.code, &prefixed(e.message)),
    };
    let n = &handle.node;
    let advertise_host = n.advertise.rsplit_once(':').map_or("", |(h, _)| h);
    for w in tls.warnings(advertise_host) {
        log::warn!("{w}");
    }
    log::info!(
        "hypercache-server started api={} mgmt={} dist={} advertise={} {}",
        n.api_addr,
        n.mgmt_addr,
        n.dist_addr,
        n.advertise,
        summary.0
    );
    // First signal: the control core runs the shutdown sequence and exits 0.
    let Some(first) = wait_signal(&set, None, &tls) else {
        die(1, "hypercache-server: sigwait failed");
    };
    log::info!("signal {first} received: shutting down");
    n.shutdown_requested.store(true, Ordering::Release);
    let limit = n.config.shutdown_timeout + Duration::from_secs(1);
    match wait_signal(&set, Some(limit), &tls) {
        Some(sig) => {
            log::warn!("second signal {sig}: exiting at once");
            std::process::exit(128 + sig);
        }
        None => {
            log::warn!("shutdown deadline reached: exiting");
            std::process::exit(0);
        }
    }
}

/// `check-config`: the configuration is valid (else `main` already exited 2); print what the
/// node would run with, secrets redacted, and exit 0 without binding or starting anything.
fn check_config(c: &Config) -> ! {
    let mut s = format!("# hypercache-server {VERSION}: configuration is valid\n");
    for (name, value) in c.env_view() {
        s.push_str(&format!("{name}={value}\n"));
    }
    for v in &c.unknown_vars {
        s.push_str(&format!("# unknown variable {v} ignored\n"));
    }
    out(&s);
    std::process::exit(0);
}

/// The settings part of the start line (ops.md §5).
struct StartSummary(String);

impl StartSummary {
    fn of(c: &Config) -> StartSummary {
        StartSummary(format!(
            "cores={} cpus={} control_cpu={} seeds={} replication={} write={} read={} auth={} capacity={} max_memory={} eviction={} log_level={} api_tls={} mgmt_tls={} dist_tls={} oidc={}",
            c.cores,
            hypercache::config::cpuset::format_cpu_list(c.data_cpus()),
            c.control_cpu(),
            c.seeds.len(),
            c.replication,
            c.write_consistency.name(),
            c.read_consistency.name(),
            if c.auth_on() { "on" } else { "off" },
            c.capacity,
            c.max_memory.map_or("none".to_string(), |m| m.to_string()),
            c.eviction.name(),
            level_name(c.log_level),
            TlsSet::mode(&c.tls.client),
            TlsSet::mode(&c.tls.mgmt),
            TlsSet::mode(&c.tls.dist),
            if c.oidc_config.is_some() { "on" } else { "off" },
        ))
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|s| !s.is_empty())
}
