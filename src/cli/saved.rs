//! What the daemon saved, read without it: the commands that also work while it is stopped
//! (`status`, `dns plan|apply`, `mirror`, offline `drain`/`release`) read the state database
//! through here, so they all see the same thing.

use crate::config::Config;
use crate::decide::SiteState;
use crate::store::Store;

/// Every site's saved state (a site never seen starts healthy on its primary) and the public
/// addresses last agreed, from the state database; for the commands that run without the daemon.
pub(crate) fn saved_states(
    cfg: &Config,
    now: u64,
) -> anyhow::Result<(
    Vec<SiteState>,
    std::collections::BTreeMap<crate::net::Family, std::net::IpAddr>,
)> {
    let store = Store::open_read_only(&cfg.data_dir)?;
    let mut states = vec![];
    for site in &cfg.sites {
        let saved = match &store {
            Some(s) => s.load_state(&site.name)?,
            None => None,
        };
        states.push(saved.unwrap_or_else(|| SiteState::new(now)));
    }
    Ok((states, saved_public(&store)?))
}

/// The public addresses last agreed, from the state database (empty when there is none).
pub(crate) fn saved_public(
    store: &Option<Store>,
) -> anyhow::Result<std::collections::BTreeMap<crate::net::Family, std::net::IpAddr>> {
    Ok(match store {
        Some(s) => s
            .public_ips()?
            .into_iter()
            .map(|(f, (ip, _))| (f, ip))
            .collect(),
        None => Default::default(),
    })
}
