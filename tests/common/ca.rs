//! A throwaway CA for the HTTPS tests (origins, Pebble's own listener, user-supplied files).

pub struct Ca {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
    params: rcgen::CertificateParams,
}

impl Default for Ca {
    fn default() -> Self {
        Ca::new()
    }
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "understudy test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.clone().self_signed(&key).unwrap();
        Ca { key, cert, params }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// (certificate PEM, key PEM) for `name`.
    pub fn issue(&self, name: &str) -> (String, String) {
        self.issue_names(&[name])
    }

    /// (certificate PEM, key PEM) for several names (IP addresses become IP SANs).
    pub fn issue_names(&self, names: &[&str]) -> (String, String) {
        self.issue_until(names, None)
    }

    /// The same, expiring `days` days from now (at midnight UTC).
    pub fn issue_expiring(&self, names: &[&str], days: u64) -> (String, String) {
        let t = httpdate::fmt_http_date(
            std::time::SystemTime::now() + std::time::Duration::from_secs(days * 86_400),
        );
        // "Fri, 27 Nov 2026 18:00:00 GMT"
        let p: Vec<&str> = t.split_whitespace().collect();
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS.iter().position(|m| *m == p[2]).unwrap() as u8 + 1;
        self.issue_until(
            names,
            Some((p[3].parse().unwrap(), month, p[1].parse().unwrap())),
        )
    }

    fn issue_until(&self, names: &[&str], until: Option<(i32, u8, u8)>) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some((y, m, d)) = until {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}
