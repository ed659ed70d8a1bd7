//! The command line: argument parsing, one config load, and the commands (`run` starts the
//! daemon through [`crate::app`]; `check-config`, `status`, `drain`, `release`, `ip`, `report`,
//! `dns`, `mirror`, `serve`, `demo`). `main.rs` only calls [`main`].
//!
//! `status`, `drain` and `release` talk to the running daemon through the control API, found
//! via the runtime file in the data directory. When the daemon is not running, `status` reads
//! the state database, and `drain --force` / `release` write the latch there, so it holds from
//! the daemon's next start.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

mod dns;
mod install;
mod maintenance;
mod mirror;
mod saved;
mod status;
use dns::{dns_command, saved_managed};
use status::{command, status};

use crate::app;
use crate::config::{self, Config, DEFAULT_CONFIG_PATH};
use crate::decide::Input;
use crate::store::Store;
use crate::util::utc;

#[derive(Parser)]
#[command(
    name = "understudy",
    version,
    about = "Keeps self-hosted websites online: watches each site's primary server and, when it stops answering, points the site's DNS at a standby — and back once the primary is healthy and stable.",
    after_help = "Start with `understudy demo` to see a failover and failback on loopback in under a minute."
)]
pub struct Cli {
    /// Config file.
    #[arg(short = 'c', long = "config", global = true, env = "UNDERSTUDY_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Clone, Copy)]
pub enum DnsCmd {
    /// Print what would change at each provider, from the saved state (dry run: no writes).
    Plan,
    /// Apply the plan once, then confirm with the zone's authoritative servers.
    Apply,
    /// Print the DS records the parent zone should hold for each signed zone (its KSK).
    Ds,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the daemon: probe every site, fail DNS over and back, serve the zones.
    Run {
        /// Start every site afresh if the state database is missing, empty or damaged (a damaged
        /// file is moved aside). Without it such a start stops with a message saying how to
        /// restore the newest backup from <data_dir>/backups/.
        #[arg(long)]
        reset_state: bool,
    },
    /// Validate the config, print the effective settings (defaults filled in, secrets redacted),
    /// and test each DNS provider's credentials read-only.
    CheckConfig {
        /// Do not contact the DNS providers.
        #[arg(long)]
        offline: bool,
    },
    /// External DNS providers: show or push what the managed records should be.
    Dns {
        #[command(subcommand)]
        command: DnsCmd,
    },
    /// Show each site: state, since when, why, and what the DNS server answers now.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Latch a site to the standby for planned maintenance (e.g. before rebooting the primary).
    /// Refused if the standby is not ready, unless --force. Holds across restarts until `release`.
    Drain {
        /// Site name (or its domain).
        site: String,
        /// Drain even if the standby is not known to be ready.
        #[arg(long)]
        force: bool,
    },
    /// Release a drained site: back to the primary once it passes its probes.
    Release {
        /// Site name (or its domain).
        site: String,
    },
    /// Planned maintenance of a primary: drain SITE, wait until its DNS answer has moved and
    /// the TTL has passed, run COMMAND (e.g. a reboot script), then release once the primary
    /// passes its probes again (or when --for runs out). Needs the running daemon.
    Maintenance {
        /// Site name (or its domain).
        site: String,
        /// The longest the site stays drained: the wait for a healthy primary after COMMAND
        /// ends no longer than this from the start ("30m", "2h").
        #[arg(long = "for", value_parser = crate::util::parse_duration)]
        window: Duration,
        /// Drain even if the standby is not known to be ready.
        #[arg(long)]
        force: bool,
        /// What to run once visitors are on the standby; exits with its status.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Ask every public-address source now; print each answer, the agreed address and why.
    Ip,
    /// Push this line's address to a standby's update endpoint (the dyndns2 protocol, the same
    /// one home routers speak). Without --ip, the address is agreed from this config's sources.
    Report {
        /// The standby's endpoint, e.g. https://standby.example.net:8245
        #[arg(long)]
        to: String,
        /// The name to update (a [[ddns]] name or an `auto` site's domain on the standby).
        #[arg(long)]
        hostname: String,
        #[arg(long, default_value = "understudy")]
        user: String,
        /// File holding the password (or set UNDERSTUDY_PUSH_PASSWORD).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Report this address instead of asking the sources.
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// CA certificate (PEM) for an endpoint whose certificate is not from a public CA.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// The standby copy: `mirror SITE` crawls the site now and publishes the snapshot if it
    /// passes its checks (`mirror crawl SITE` for a site named like one of the subcommands);
    /// `mirror verify SITE` lists references the published snapshot cannot answer; `mirror
    /// export SITE DIR` writes a copy that browses offline.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Mirror {
        #[command(subcommand)]
        command: Option<MirrorCmd>,
        /// Site name (or its domain) to crawl now.
        #[arg(required = true)]
        site: Option<String>,
        /// Print the crawl report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve every site's published snapshot by Host name over HTTP (the standby server; the
    /// daemon's `[standby]` also serves HTTPS with ACME or your certificates).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:80")]
        listen: std::net::SocketAddr,
    },
    /// Notification channels ([[notify]]).
    Notify {
        #[command(subcommand)]
        command: NotifyCmd,
    },
    /// Show a failover and failback on loopback, with sample servers; needs nothing installed.
    Demo,
    /// Write a first config (asks on a terminal; flags for scripts), secrets in 0600 files.
    Init(install::InitArgs),
    /// Read a password on standard input and print its Argon2id hash, for `[api] password_file`.
    Password,
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    Man,
}

#[derive(Subcommand)]
pub enum NotifyCmd {
    /// Send a test message to every channel (or the one named) and print what each answered.
    Test {
        /// The channel's `name`.
        channel: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MirrorCmd {
    /// Crawl the site now (as `mirror SITE`; also for a site named `verify`, `export`, ...).
    Crawl {
        site: String,
        /// Print the crawl report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every in-scope reference in the published snapshot that it cannot answer.
    Verify {
        site: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the published snapshot as a directory that browses offline (file://).
    Export { site: String, dir: PathBuf },
    /// The last crawls of a site: pages, bytes, duration, published or rejected and why.
    History {
        site: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    // One crypto provider for the whole process: ring. Every TLS config here names it
    // explicitly too; this default only guards against a client built without one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let default_level = match cli.command {
        Cmd::Run { .. } | Cmd::Serve { .. } => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{default_level},hickory_proto=warn,hickory_net=warn,aws_runtime=error"
        ))
    });
    // Colours only for a terminal: a log file or the journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load_config(cli: &Cli) -> Result<Config, i32> {
    config::load(&cli.config).map_err(|e| {
        eprintln!("error: {e}");
        if e.line == 0 && !cli.config.exists() {
            eprintln!("hint: pass the config with -c FILE (or set UNDERSTUDY_CONFIG); `understudy demo` needs none");
        }
        2
    })
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    // The commands that need no config file (`report` reads one only without --ip).
    match &cli.command {
        Cmd::Demo => {
            crate::demo::run().await?;
            return Ok(0);
        }
        Cmd::Init(args) => return install::init(args),
        Cmd::Password => return install::password(),
        Cmd::Completions { shell } => return install::completions(*shell),
        Cmd::Man => return install::man(),
        Cmd::Report {
            to,
            hostname,
            user,
            password_file,
            ip,
            ca_file,
        } => {
            return report(
                &cli,
                to,
                hostname,
                user,
                password_file.as_deref(),
                *ip,
                ca_file.as_deref(),
            )
            .await;
        }
        _ => {}
    }
    let cfg = match load_config(&cli) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match &cli.command {
        // Handled above.
        Cmd::Demo
        | Cmd::Report { .. }
        | Cmd::Init(_)
        | Cmd::Password
        | Cmd::Completions { .. }
        | Cmd::Man => Ok(0),
        Cmd::Ip => ip_command(&cfg).await,
        Cmd::Notify {
            command: NotifyCmd::Test { channel },
        } => notify_test(&cfg, channel.as_deref()).await,
        Cmd::Dns {
            command: DnsCmd::Ds,
        } => dns::ds(&cfg),
        Cmd::Dns { command } => dns_command(&cfg, matches!(command, DnsCmd::Apply)).await,
        Cmd::CheckConfig { offline } => check_config(&cfg, *offline).await,
        Cmd::Mirror {
            command,
            site,
            json,
        } => match command {
            None => mirror::crawl(&cfg, site.as_deref().unwrap_or_default(), *json).await,
            Some(MirrorCmd::Crawl { site, json }) => mirror::crawl(&cfg, site, *json).await,
            Some(MirrorCmd::Verify { site, json }) => mirror::verify(&cfg, site, *json),
            Some(MirrorCmd::Export { site, dir }) => mirror::export(&cfg, site, dir),
            Some(MirrorCmd::History { site, limit }) => mirror::history(&cfg, site, *limit),
        },
        Cmd::Serve { listen } => {
            let standby = std::sync::Arc::new(crate::standby::Standby::new(&cfg)?);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} for the standby server"))?;
            eprintln!(
                "serving {} site(s) on http://{}",
                cfg.sites.len(),
                listener.local_addr()?
            );
            let shutdown = tokio_util::sync::CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                app::wait_for_signal().await;
                stop.cancel();
            });
            let refresh =
                tokio::spawn(crate::standby::refresher(standby.clone(), shutdown.clone()));
            let cores = app::StandbyCores::start()?;
            crate::standby::serve(listener, standby, None, None, Some(cores.cores()), shutdown)
                .await;
            let _ = tokio::task::spawn_blocking(move || cores.stop()).await;
            refresh.abort();
            Ok(0)
        }
        Cmd::Run { reset_state } => {
            app::run(
                cfg,
                app::StartOptions {
                    reset_state: *reset_state,
                    reloaded: false,
                },
            )
            .await?;
            Ok(0)
        }
        Cmd::Status { json } => status(&cfg, *json).await,
        Cmd::Drain { site, force } => command(&cfg, site, Input::Drain { force: *force }).await,
        Cmd::Release { site } => command(&cfg, site, Input::Release).await,
        Cmd::Maintenance {
            site,
            window,
            force,
            command,
        } => maintenance::run(&cfg, site, *window, *force, command).await,
    }
}

/// `check-config`: the effective settings, the warnings, and (unless offline) each provider's
/// credentials tested read-only with what it would warn about before writing.
async fn check_config(cfg: &Config, offline: bool) -> anyhow::Result<i32> {
    crate::out!("{}", cfg.describe());
    if cfg.sites.is_empty() && cfg.ddns.is_empty() {
        eprintln!("warning: no [[sites]] or [[ddns]] are configured, so there is nothing to do");
    }
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    if !offline {
        let mut bad = 0;
        let managed = saved_managed(cfg)?;
        for r in crate::reconcile::for_config(cfg)? {
            match r.provider.check(&r.zone).await {
                Ok(what) => {
                    eprintln!("provider ok: zone {}: {what}", r.zone);
                    for n in r
                        .takeover_warnings(&r.desired(&managed))
                        .await
                        .unwrap_or_default()
                    {
                        eprintln!("warning: zone {} at {}: {n}", r.zone, r.provider.describe());
                    }
                }
                Err(e) => {
                    eprintln!(
                        "provider error: zone {} at {}: {e}",
                        r.zone,
                        r.provider.describe()
                    );
                    bad += 1;
                }
            }
        }
        if bad > 0 {
            eprintln!("config is valid, but {bad} provider check(s) failed");
            return Ok(3);
        }
    }
    eprintln!(
        "config ok: {} site(s), {} zone(s)",
        cfg.sites.len(),
        cfg.dns.zones.len()
    );
    Ok(0)
}

/// `understudy report`: one dyndns2 update request.
async fn report(
    cli: &Cli,
    to: &str,
    hostname: &str,
    user: &str,
    password_file: Option<&std::path::Path>,
    ip: Option<std::net::IpAddr>,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    let password = match (password_file, std::env::var("UNDERSTUDY_PUSH_PASSWORD")) {
        (Some(f), _) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .trim()
            .to_string(),
        (None, Ok(p)) => p,
        (None, Err(_)) => {
            anyhow::bail!("no password: give --password-file or set UNDERSTUDY_PUSH_PASSWORD")
        }
    };
    let addr = match ip {
        Some(ip) => ip,
        None => {
            let cfg = match load_config(cli) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let http =
                crate::http::client(Duration::from_secs(30)).map_err(|e| anyhow::anyhow!(e))?;
            let family = cfg.ip.families().into_iter().next().ok_or_else(|| {
                anyhow::anyhow!(
                    "no --ip and no [[ip.sources]] in {} to find the address with",
                    cfg.path.display()
                )
            })?;
            match crate::ip::round(
                &cfg.ip.sources,
                family,
                &http,
                &cfg.ip.allow,
                cfg.ip.quorum,
                &Default::default(),
            )
            .await
            .1
            {
                crate::ip::Verdict::Agreed { addr, .. } => addr,
                crate::ip::Verdict::NoAgreement { why } => {
                    eprintln!(
                        "report: not sent, the sources do not agree on this line's address ({why})"
                    );
                    return Ok(1);
                }
            }
        }
    };
    let client = crate::http::client_with_ca(Duration::from_secs(30), ca_file)
        .map_err(|e| anyhow::anyhow!(e))?;
    let url = format!("{}/nic/update", to.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .query(&[("hostname", hostname), ("myip", &addr.to_string())])
        .basic_auth(user, Some(&password))
        .header(
            reqwest::header::USER_AGENT,
            concat!("understudy/", env!("CARGO_PKG_VERSION"), " report"),
        )
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default().trim().to_string();
    crate::outln!("{body}");
    Ok(
        if status.is_success() && (body.starts_with("good") || body.starts_with("nochg")) {
            0
        } else {
            1
        },
    )
}

/// `understudy notify test [CHANNEL]`: one test message per channel, sent at once (not through
/// the daemon's outbox), and the outcome of each. Exit 1 if any was not delivered.
async fn notify_test(cfg: &Config, only: Option<&str>) -> anyhow::Result<i32> {
    let channels: Vec<_> = cfg
        .notify
        .iter()
        .filter(|c| only.is_none_or(|n| c.name == n))
        .collect();
    if channels.is_empty() {
        let known: Vec<&str> = cfg.notify.iter().map(|c| c.name.as_str()).collect();
        eprintln!(
            "error: {}",
            match only {
                Some(n) if !known.is_empty() => format!(
                    "no channel is named `{n}`; the channels are: {}",
                    known.join(", ")
                ),
                _ => "no [[notify]] channels are configured".to_string(),
            }
        );
        return Ok(2);
    }
    let msg = crate::notify::test_notice();
    let mut failed = 0;
    for ch in channels {
        let start = std::time::Instant::now();
        let channel = crate::notify::Channel::new(ch.clone())?;
        match channel.send(&[], &msg).await {
            Ok(()) => crate::outln!(
                "{}: delivered in {}",
                ch.name,
                crate::util::human(start.elapsed())
            ),
            Err(e) => {
                failed += 1;
                crate::outln!("{}: NOT delivered: {e}", ch.name);
            }
        }
    }
    Ok(i32::from(failed > 0))
}

/// `understudy ip`: one round per family, every answer with its reason, the verdict, and the
/// stored history.
async fn ip_command(cfg: &Config) -> anyhow::Result<i32> {
    if cfg.ip.sources.is_empty() {
        crate::outln!("no [[ip.sources]] are configured");
        return Ok(0);
    }
    let http = crate::http::client(Duration::from_secs(30)).map_err(|e| anyhow::anyhow!(e))?;
    let stored = match Store::open_read_only(&cfg.data_dir)? {
        Some(s) => s.public_ip_history(20)?,
        None => vec![],
    };
    let mut agreed_all = true;
    for family in cfg.ip.families() {
        crate::outln!("{family} (quorum: {} operators):", cfg.ip.quorum);
        // Pushed addresses live in the running daemon; this one-off round cannot see them.
        let (answers, verdict) = crate::ip::round(
            &cfg.ip.sources,
            family,
            &http,
            &cfg.ip.allow,
            cfg.ip.quorum,
            &Default::default(),
        )
        .await;
        for a in &answers {
            match &a.result {
                Ok(ip) => crate::outln!(
                    "  {:<20} {:<16} {ip}",
                    a.source,
                    format!("({})", a.operator)
                ),
                Err(why) => crate::outln!(
                    "  {:<20} {:<16} REJECTED: {why}",
                    a.source,
                    format!("({})", a.operator)
                ),
            }
        }
        let current = stored
            .iter()
            .find(|h| h.0 == family)
            .map(|h| h.1.to_string())
            .unwrap_or_else(|| "none yet".to_string());
        match verdict {
            crate::ip::Verdict::Agreed {
                addr,
                sources,
                operators,
            } => {
                crate::outln!(
                    "  => {addr}, agreed by {operators} operator(s) ({}); published now: {current}",
                    sources.join(", ")
                )
            }
            crate::ip::Verdict::NoAgreement { why } => {
                agreed_all = false;
                crate::outln!(
                    "  => no agreement ({why}); the last good address stays published: {current}"
                )
            }
        }
    }
    if !stored.is_empty() {
        crate::outln!("\nhistory (newest first):");
        for (family, addr, at, sources) in &stored {
            crate::outln!("  {}  {family} {addr}  agreed by {sources}", utc(*at));
        }
    }
    Ok(if agreed_all { 0 } else { 1 })
}
