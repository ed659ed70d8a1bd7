//! UPnP IGD: ask the home router for its external address (`GetExternalIPAddress` on its
//! WANIPConnection or WANPPPConnection service).
//!
//! The router's device description URL is configured (e.g. `http://192.168.1.1:5000/rootDesc.xml`,
//! as `upnpc -l` prints it); discovery by SSDP multicast is not done yet. The description is
//! read for the connection service's control URL, then one SOAP request is made. Only the two
//! elements needed are read out of the XML, with bounded sizes; anything unexpected is an
//! error, never a guess.

use std::time::Duration;

const MAX_DOC: usize = 256 * 1024;
const SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// The text of the first `<tag>...</tag>` in `xml`, ignoring namespace prefixes on the tag.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>')?;
        let name = rest[..end].split_whitespace().next().unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == tag && !name.starts_with('/') {
            let body = &rest[end + 1..];
            let close = body.find("</")?;
            return Some(body[..close].trim());
        }
    }
    None
}

/// The control URL of the WAN connection service in a device description, with its type.
pub fn control_url(description: &str) -> Result<(String, String), String> {
    for block in description.split("<service>").skip(1) {
        let block = block.split("</service>").next().unwrap_or("");
        let Some(st) = element(block, "serviceType") else {
            continue;
        };
        if SERVICES.contains(&st) {
            let url = element(block, "controlURL")
                .ok_or("the WAN connection service has no controlURL")?;
            return Ok((st.to_string(), url.to_string()));
        }
    }
    Err("the router's description has no WANIPConnection or WANPPPConnection service".to_string())
}

/// Resolves `reference` against the description's URL (absolute, or a path on its host).
fn join(base: &str, reference: &str) -> Result<String, String> {
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return Ok(reference.to_string());
    }
    let scheme_end = base.find("://").ok_or("bad description URL")? + 3;
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let path = if reference.starts_with('/') {
        reference.to_string()
    } else {
        format!("/{reference}")
    };
    Ok(format!("{}{path}", &base[..host_end]))
}

async fn text(resp: reqwest::Response) -> Result<String, String> {
    if !resp.status().is_success() {
        return Err(format!("the router answered {}", resp.status()));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the router's answer: {e}"))?;
    if bytes.len() > MAX_DOC {
        return Err("the router's answer is too large".to_string());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| "the router's answer is not text".to_string())
}

/// Asks the router at `description_url` for its external address.
pub async fn external_address(
    http: &reqwest::Client,
    description_url: &str,
    timeout: Duration,
) -> Result<String, String> {
    let desc = text(
        http.get(description_url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| format!("cannot read {description_url}: {}", e.without_url()))?,
    )
    .await?;
    let (service, control) = control_url(&desc)?;
    let control = join(description_url, &control)?;
    let body = format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:GetExternalIPAddress xmlns:u=\"{service}\"></u:GetExternalIPAddress></s:Body></s:Envelope>"
    );
    let resp = http
        .post(&control)
        .timeout(timeout)
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .header("SOAPAction", format!("\"{service}#GetExternalIPAddress\""))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("GetExternalIPAddress at {control}: {}", e.without_url()))?;
    let answer = text(resp).await?;
    match element(&answer, "NewExternalIPAddress") {
        Some("") => Err("the router has no external address (not connected, or it refuses to report a private one)".to_string()),
        Some(a) => Ok(a.to_string()),
        None => Err(format!(
            "no NewExternalIPAddress in the router's answer{}",
            element(&answer, "errorDescription").map(|d| format!(" ({d})")).unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESC: &str = r#"<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><serviceList>
        <service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service>
        </serviceList><deviceList><device><deviceList><device><serviceList>
        <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL></service>
        </serviceList></device></deviceList></device></deviceList></device></root>"#;

    #[test]
    fn finds_the_wan_service() {
        assert_eq!(
            control_url(DESC).unwrap(),
            (
                "urn:schemas-upnp-org:service:WANIPConnection:1".to_string(),
                "/ctl/IPConn".to_string()
            )
        );
        assert!(control_url("<root></root>").is_err());
        assert!(control_url("<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType></service>")
            .unwrap_err()
            .contains("no controlURL"));
    }

    #[test]
    fn reads_namespaced_elements() {
        let soap = "<s:Envelope><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>100.128.0.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>";
        assert_eq!(element(soap, "NewExternalIPAddress"), Some("100.128.0.1"));
        assert_eq!(
            element(
                "<a:errorDescription>Invalid Action</a:errorDescription>",
                "errorDescription"
            ),
            Some("Invalid Action")
        );
        assert_eq!(element("<x>unclosed", "x"), None);
        assert_eq!(element("garbage <<<>>>", "x"), None);
    }

    #[test]
    fn joins_control_urls() {
        assert_eq!(
            join("http://10.0.0.1:5000/rootDesc.xml", "/ctl/IPConn").unwrap(),
            "http://10.0.0.1:5000/ctl/IPConn"
        );
        assert_eq!(
            join("http://10.0.0.1:5000/rootDesc.xml", "ctl/IPConn").unwrap(),
            "http://10.0.0.1:5000/ctl/IPConn"
        );
        assert_eq!(
            join("http://10.0.0.1:5000", "http://10.0.0.1:5001/x").unwrap(),
            "http://10.0.0.1:5001/x"
        );
    }
}
