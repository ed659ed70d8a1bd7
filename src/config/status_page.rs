//! `[status_page]`: the public status page, for visitors (`crate::web::public`).
//!
//! ```toml
//! [status_page]
//! listen = ["127.0.0.1:8080"]        # its own listener (put a TLS proxy or the standby in front)
//! title = "Example Hosting status"   # default "Status"
//! sites = ["blog", "shop"]           # default: every site
//! show_addresses = false             # the default: no address is ever shown
//! ```
//!
//! It shows each listed site's state in plain words, its incidents (failovers, outages,
//! drains) of the last 90 days, its scheduled maintenance, an Atom feed and the same as JSON.
//! Nothing else: no reasons (they hold addresses and error texts), no probe details, no
//! other sites, and no address unless `show_addresses` says so.

use super::cx::closest;
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatusPage {
    pub(super) listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) title: Option<Spanned<String>>,
    pub(super) sites: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) show_addresses: Option<Spanned<bool>>,
}

#[derive(Debug, Clone)]
pub struct StatusPageConfig {
    pub listen: Vec<SocketAddr>,
    pub title: String,
    /// The sites shown, by name; `None`: every site.
    pub sites: Option<Vec<String>>,
    pub show_addresses: bool,
}

impl Cx<'_> {
    pub(super) fn build_status_page(
        &self,
        raw: Option<Spanned<RawStatusPage>>,
        sites: &[Site],
    ) -> R<Option<StatusPageConfig>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let r = raw.into_inner();
        let listen = self.listen_list(r.listen, "status_page.listen", "127.0.0.1:8080")?;
        let title = match r.title {
            Some(t) if t.get_ref().trim().is_empty() || t.get_ref().chars().count() > 100 => {
                return self.err(
                    t.span(),
                    "status_page.title",
                    "a title is 1 to 100 characters",
                )
            }
            Some(t) => t.into_inner().trim().to_string(),
            None => "Status".to_string(),
        };
        let shown = match r.sites {
            None => None,
            Some(list) => {
                let mut out = vec![];
                for (i, s) in list.into_inner().into_iter().enumerate() {
                    let name = s.get_ref();
                    if !sites.iter().any(|site| &site.name == name) {
                        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
                        let hint = closest(name, &names)
                            .map(|c| format!("; did you mean `{c}`?"))
                            .unwrap_or_default();
                        return self.err(
                            s.span(),
                            &format!("status_page.sites[{i}]"),
                            format!("no site is named `{name}`{hint}"),
                        );
                    }
                    out.push(name.clone());
                }
                Some(out)
            }
        };
        Ok(Some(StatusPageConfig {
            listen,
            title,
            sites: shown,
            show_addresses: r.show_addresses.map(|b| b.into_inner()).unwrap_or(false),
        }))
    }
}
