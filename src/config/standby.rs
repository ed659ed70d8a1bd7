//! `[standby]` (listeners, banner, snapshot age, `[standby.acme]`) and `[api]`.

use super::*;

impl Cx<'_> {
    pub(super) fn build_standby(&self, raw: Spanned<RawStandby>) -> R<StandbyConfig> {
        let st = raw.into_inner();
        let listen = self.listen_list(st.listen, "standby.listen", "0.0.0.0:80")?;
        let https_listen = match st.https_listen {
            None => vec![],
            some => self.listen_list(some, "standby.https_listen", "0.0.0.0:443")?,
        };
        let max_snapshot_age = self.duration(
            &st.max_snapshot_age,
            "standby.max_snapshot_age",
            DEFAULT_MAX_SNAPSHOT_AGE,
            Duration::from_secs(1),
        )?;
        let acme = match st.acme {
            None => None,
            Some(a) => {
                let aspan = a.span();
                let a = a.into_inner();
                let directory = match &a.directory {
                    None => "https://acme-v02.api.letsencrypt.org/directory".to_string(),
                    Some(d) => self.url(d, "standby.acme.directory", &["https"], "")?,
                };
                let mut contact = vec![];
                for (i, c) in a.contact.into_iter().enumerate() {
                    if !c.get_ref().starts_with("mailto:") || c.get_ref().len() < 10 {
                        let k = format!("standby.acme.contact[{i}]");
                        return self.err(
                            c.span(),
                            &k,
                            format!(
                                "`{}` is not a mailto: address like \"mailto:ops@example.com\"",
                                c.get_ref()
                            ),
                        );
                    }
                    contact.push(c.into_inner());
                }
                let ca_file = match &a.ca_file {
                    None => None,
                    Some(c) => Some(self.ca_file(c, "standby.acme.ca_file")?),
                };
                if https_listen.is_empty() {
                    return self.err(
                        aspan,
                        "standby.acme",
                        "certificates are only used with HTTPS: add standby.https_listen",
                    );
                }
                Some(AcmeConfig {
                    directory,
                    contact,
                    ca_file,
                })
            }
        };
        let tracking_params = match st.tracking_params {
            None => default_tracking_params(),
            Some(list) => {
                let mut out = vec![];
                for (i, p) in list.into_inner().into_iter().enumerate() {
                    let name = p.get_ref().trim().to_ascii_lowercase();
                    let bare = name.strip_suffix('*').unwrap_or(&name);
                    if bare.is_empty() || bare.contains(['=', '&', '*', '?', ' ']) {
                        return self.err(
                            p.span(),
                            &format!("standby.tracking_params[{i}]"),
                            format!("`{}` is not a query parameter name (a name, or a prefix ending in `*` like \"utm_*\")", p.get_ref()),
                        );
                    }
                    out.push(name);
                }
                out
            }
        };
        Ok(StandbyConfig {
            listen,
            banner: st.banner.map(|b| b.into_inner()).unwrap_or(false),
            https_listen,
            max_snapshot_age,
            tracking_params,
            acme,
        })
    }
}
