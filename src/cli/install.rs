//! Installing and living with the daemon: `init` (a first config), `password` (the dashboard's
//! hash), `completions` and `man` (from the clap definitions, for the package).
//!
//! `init` asks what it was not given when standard input is a terminal, and otherwise wants
//! every answer as a flag (a script or a package never hangs on a question). It writes a
//! commented config that `check-config` accepts, and each secret to its own file under
//! `secrets/` beside it, mode 0600 (the config names the file; the secret is never printed).
//! It refuses to overwrite an existing config unless `--force`.

use std::io::{BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Where DNS is hosted, for `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DnsHost {
    /// understudy's own authoritative server (point the domain's NS records at this machine).
    Builtin,
    /// A BIND/Knot/… primary taking RFC 2136 updates signed with a TSIG key.
    Rfc2136,
    Powerdns,
    Cloudflare,
    Route53,
}

/// `init`'s answers (flags; the missing ones are asked on a terminal).
#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    /// The site's domain (e.g. www.example.com).
    #[arg(long)]
    pub domain: Option<String>,
    /// The primary (home) server's address, or `auto` for the line's public address.
    #[arg(long)]
    pub primary: Option<String>,
    /// The standby's address (the machine serving the copy).
    #[arg(long)]
    pub standby: Option<String>,
    /// Where the zone's DNS is hosted.
    #[arg(long, value_enum)]
    pub dns: Option<DnsHost>,
    /// The zone (default: the domain without its first label, or the domain when it has two).
    #[arg(long)]
    pub zone: Option<String>,
    /// The provider's server: RFC 2136 primary `host:port`, PowerDNS API URL.
    #[arg(long)]
    pub dns_server: Option<String>,
    /// Where the built-in DNS server listens (UDP and TCP).
    #[arg(long, default_value = "0.0.0.0:53")]
    pub dns_listen: std::net::SocketAddr,
    /// Where the control API and the dashboard listen (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:9353")]
    pub api_listen: std::net::SocketAddr,
    /// How the primary is probed: https (the certificate checked against the domain) or http.
    #[arg(long, default_value = "https", value_parser = ["https", "http"])]
    pub scheme: String,
    /// The directory to write into (the config is `understudy.toml` there).
    #[arg(long, default_value = "/etc/understudy")]
    pub dir: PathBuf,
    /// Where the daemon keeps its state.
    #[arg(long, default_value = "/var/lib/understudy")]
    pub data_dir: PathBuf,
    /// Replace an existing config (its secrets files too).
    #[arg(long)]
    pub force: bool,
}

/// Reads one line: from the terminal with a prompt, or fails naming the flag.
fn ask(prompt: &str, flag: &str, default: Option<&str>) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        match default {
            Some(d) => return Ok(d.to_string()),
            None => {
                bail!("{flag} is needed (standard input is not a terminal, so nothing is asked)")
            }
        }
    }
    let mut err = std::io::stderr();
    match default {
        Some(d) => write!(err, "{prompt} [{d}]: ")?,
        None => write!(err, "{prompt}: ")?,
    }
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    match (line.is_empty(), default) {
        (true, Some(d)) => Ok(d.to_string()),
        (true, None) => bail!("{flag} is needed"),
        (false, _) => Ok(line.to_string()),
    }
}

/// A secret: from the environment variable `env` when set, else asked on the terminal with
/// echo off, else an error.
fn ask_secret(prompt: &str, env: &str) -> anyhow::Result<String> {
    if let Ok(v) = std::env::var(env) {
        if !v.trim().is_empty() {
            return Ok(v.trim().to_string());
        }
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "{prompt} is needed: set {env} (standard input is not a terminal, so nothing is asked)"
        );
    }
    eprint!("{prompt} (not shown): ");
    let _ = std::io::stderr().flush();
    let echo_off = std::process::Command::new("stty")
        .arg("-echo")
        .status()
        .is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty").arg("echo").status();
    }
    eprintln!();
    read?;
    let line = line.trim().to_string();
    if line.is_empty() {
        bail!("{prompt} is empty");
    }
    Ok(line)
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    crate::util::write_atomic_mode(path, format!("{value}\n").as_bytes(), 0o600, true)
        .with_context(|| format!("writing {}", path.display()))?;
    give_to_service(path, true)
}

/// The package's service user (`packaging/`), when this machine has it.
const SERVICE_USER: &str = "understudy";

/// Run as root on a machine with the service user, a file the daemon reads is handed to it:
/// a secret owned by it (0600), the config readable by its group (0640, owner root).
fn give_to_service(path: &Path, own: bool) -> anyhow::Result<()> {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return Ok(());
    };
    let Some((uid, gid)) = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == SERVICE_USER)
            .then(|| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))?
    }) else {
        return Ok(());
    };
    let owner = if own { Some(uid) } else { None };
    match std::os::unix::fs::chown(path, owner, Some(gid)) {
        Ok(()) => Ok(()),
        // Not root: the files stay the caller's, which is right for a config in their home.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("handing {} to the {SERVICE_USER} user", path.display()))
        }
    }
}

/// `understudy init`.
pub fn init(args: &InitArgs) -> anyhow::Result<i32> {
    // Absolute paths: the config's relative paths would be relative to the config itself.
    let here = std::env::current_dir().context("reading the current directory")?;
    let args = &InitArgs {
        dir: here.join(&args.dir).components().collect(),
        data_dir: here.join(&args.data_dir).components().collect(),
        ..args.clone()
    };
    let config = args.dir.join("understudy.toml");
    if config.exists() && !args.force {
        bail!(
            "{} exists; check it with `understudy check-config -c {}`, or pass --force to replace it",
            config.display(),
            config.display()
        );
    }
    let domain = match &args.domain {
        Some(d) => d.clone(),
        None => ask("The site's domain (e.g. www.example.com)", "--domain", None)?,
    };
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.split('.').count() < 2 || domain.split('.').any(|l| l.is_empty()) {
        bail!("`{domain}` is not a domain name like www.example.com");
    }
    let primary = match &args.primary {
        Some(p) => p.clone(),
        None => ask(
            "The primary (home) server's address, or `auto`",
            "--primary",
            None,
        )?,
    };
    if primary != "auto"
        && primary.parse::<IpAddr>().is_err()
        && primary.parse::<std::net::SocketAddr>().is_err()
    {
        bail!("`{primary}` is not an IP address (with an optional :port for the probes) or `auto`");
    }
    let standby = match &args.standby {
        Some(s) => s.clone(),
        None => ask("The standby's address", "--standby", None)?,
    };
    let standby_ip: IpAddr = standby
        .parse()
        .or_else(|_| standby.parse::<std::net::SocketAddr>().map(|a| a.ip()))
        .map_err(|_| {
            anyhow::anyhow!("`{standby}` is not an IP address (with an optional :port)")
        })?;
    let dns = match args.dns {
        Some(d) => d,
        None => {
            let a = ask(
                "Where is DNS hosted: builtin, rfc2136, powerdns, cloudflare or route53",
                "--dns",
                Some("builtin"),
            )?;
            <DnsHost as clap::ValueEnum>::from_str(&a, true).map_err(|_| {
                anyhow::anyhow!(
                    "`{a}` is not one of builtin, rfc2136, powerdns, cloudflare, route53"
                )
            })?
        }
    };
    let labels: Vec<&str> = domain.split('.').collect();
    let zone = match &args.zone {
        Some(z) => z.trim_end_matches('.').to_ascii_lowercase(),
        None if labels.len() > 2 => labels[1..].join("."),
        None => domain.clone(),
    };
    if domain != zone && !domain.ends_with(&format!(".{zone}")) {
        bail!("the domain {domain} is not inside the zone {zone}");
    }
    let secrets = args.dir.join("secrets");
    std::fs::create_dir_all(&secrets).with_context(|| format!("creating {}", secrets.display()))?;
    let mut o = String::new();
    o.push_str(&format!(
        "# understudy configuration, written by `understudy init` on {}.\n\
         # Check it with `understudy check-config -c {}`; every key is described in the README.\n\
         # Secrets are in files under secrets/ (mode 0600); this file names them, never holds them.\n\n\
         data_dir = {}\n",
        crate::util::utc_date(crate::util::now_millis()),
        config.display(),
        quoted(&args.data_dir.display().to_string())
    ));
    let provider = match dns {
        DnsHost::Builtin => None,
        DnsHost::Rfc2136 => {
            let server = match &args.dns_server {
                Some(s) => s.clone(),
                None => ask(
                    "The primary DNS server taking updates (host:port)",
                    "--dns-server",
                    None,
                )?,
            };
            let secret = ask_secret("The TSIG secret (base64)", "UNDERSTUDY_INIT_SECRET")?;
            let file = secrets.join("tsig.secret");
            write_secret(&file, &secret)?;
            Some(format!(
                "[[providers]]\nname = \"dns\"\ntype = \"rfc2136\"\nserver = {}\ntsig_key_name = \"understudy\"   # the key's name on the server\ntsig_algorithm = \"hmac-sha256\"\ntsig_secret_file = {}\n",
                quoted(&server),
                quoted(&file.display().to_string())
            ))
        }
        DnsHost::Powerdns => {
            let url = match &args.dns_server {
                Some(s) => s.clone(),
                None => ask(
                    "The PowerDNS API URL",
                    "--dns-server",
                    Some("http://127.0.0.1:8081"),
                )?,
            };
            let secret = ask_secret("The PowerDNS API key", "UNDERSTUDY_INIT_SECRET")?;
            let file = secrets.join("powerdns.key");
            write_secret(&file, &secret)?;
            Some(format!(
                "[[providers]]\nname = \"dns\"\ntype = \"powerdns\"\nurl = {}\napi_key_file = {}\n",
                quoted(&url),
                quoted(&file.display().to_string())
            ))
        }
        DnsHost::Cloudflare => {
            let secret = ask_secret(
                "The Cloudflare API token (Zone:Read + DNS:Edit)",
                "UNDERSTUDY_INIT_SECRET",
            )?;
            let file = secrets.join("cloudflare.token");
            write_secret(&file, &secret)?;
            Some(format!(
                "[[providers]]\nname = \"dns\"\ntype = \"cloudflare\"\napi_token_file = {}\n",
                quoted(&file.display().to_string())
            ))
        }
        DnsHost::Route53 => Some(
            "[[providers]]\nname = \"dns\"\ntype = \"route53\"\n\
             # Credentials: the standard AWS chain (environment, ~/.aws, instance role),\n\
             # or profile = \"...\", or access_key_id + secret_access_key_file.\n"
                .to_string(),
        ),
    };
    o.push_str("\n[dns]\n");
    match dns {
        DnsHost::Builtin => o.push_str(&format!(
            "listen = [\"{}\"]   # point the zone's NS records (at the registrar) here\nttl = 30\n",
            args.dns_listen
        )),
        _ => o.push_str(
            "listen = [\"127.0.0.1:5353\"]   # the built-in server is unused here\nttl = 60\n",
        ),
    }
    if let Some(p) = &provider {
        o.push('\n');
        o.push_str(p);
    }
    o.push_str(&format!("\n[[dns.zones]]\nname = {}\n", quoted(&zone)));
    match dns {
        DnsHost::Builtin => o.push_str(&format!(
            "nameservers = [\"ns1.{zone}\"]\nrecords = [\n  \"ns1 {} {standby_ip}\",   # this machine: the zone's nameserver\n]\n",
            if standby_ip.is_ipv4() { "A" } else { "AAAA" }
        )),
        _ => o.push_str("provider = \"dns\"\n"),
    }
    let pw_file = args.dir.join("dashboard.password");
    o.push_str(&format!(
        "\n[api]\nlisten = \"{api}\"   # control API and dashboard (open http://{api}/)\n\
         # password_file = {}   # `understudy password > FILE` to act from the dashboard\n",
        quoted(&pw_file.display().to_string()),
        api = args.api_listen
    ));
    let name = labels[0];
    o.push_str(&format!(
        "\n[[sites]]\nname = {}\ndomain = {}\nprimary = {}   # the home server{}\nstandby = {}\n\n\
         [sites.probe]\nscheme = {}   # https: the certificate is checked against the domain\npath = \"/\"\n",
        quoted(name),
        quoted(&domain),
        quoted(&primary),
        if primary == "auto" { " (the line's public address)" } else { "" },
        quoted(&standby),
        quoted(&args.scheme)
    ));
    if primary == "auto" {
        // Two independent operators must agree (quorum 2); add a third so one can be down.
        o.push_str(
            "\n# `primary = \"auto\"` follows the line's public address, agreed by sources of\n\
             # different operators (see the README: HTTP echo, DNS, interface, UPnP, push).\n\
             [[ip.sources]]\nname = \"ipify\"\noperator = \"ipify\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"https://api.ipify.org\"\n\n\
             [[ip.sources]]\nname = \"opendns\"\noperator = \"cisco\"\ntype = \"dns\"\nfamily = \"ipv4\"\nserver = \"208.67.222.222:53\"\nquestion = \"myip.opendns.com\"\n\n\
             [[ip.sources]]\nname = \"icanhazip\"\noperator = \"cloudflare\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"https://ipv4.icanhazip.com\"\n",
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    crate::util::write_atomic_mode(&config, o.as_bytes(), 0o640, true)
        .with_context(|| format!("writing {}", config.display()))?;
    give_to_service(&config, false)?;
    // What we wrote must read back; a mistake here is ours, said plainly.
    if let Err(e) = crate::config::load(&config) {
        bail!(
            "the config written to {} does not check: {e}",
            config.display()
        );
    }
    crate::util::write_stdout(format_args!(
        "wrote {}\nnext: understudy check-config -c {}\n      understudy run -c {}\n",
        config.display(),
        config.display(),
        config.display()
    ));
    Ok(0)
}

/// `understudy password`: one line from standard input (asked without echo on a terminal),
/// printed as the Argon2id hash `[api] password_file` holds.
pub fn password() -> anyhow::Result<i32> {
    let pw = match std::io::stdin().is_terminal() {
        true => ask_secret("The dashboard password", "UNDERSTUDY_PASSWORD")?,
        false => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if pw.chars().count() < 12 {
        bail!("the password needs at least 12 characters");
    }
    let hash = crate::api::dashboard::hash_password(&pw)?;
    crate::util::write_stdout(format_args!("{hash}\n"));
    Ok(0)
}

/// `understudy completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "understudy", &mut out);
    crate::util::write_stdout(format_args!("{}", String::from_utf8_lossy(&out)));
    Ok(0)
}

/// `understudy man`: the manual page (roff) of the command and its subcommands.
pub fn man() -> anyhow::Result<i32> {
    let cmd = <super::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let _ = writeln!(out, ".SH \"UNDERSTUDY {}\"", name.to_uppercase());
        if let Some(about) = sub.get_about() {
            let _ = writeln!(
                out,
                "{}",
                about
                    .to_string()
                    .replace('\\', "\\\\")
                    .replace("\n.", "\n\\&.")
            );
        }
    }
    crate::util::write_stdout(format_args!("{}", String::from_utf8_lossy(&out)));
    Ok(0)
}
