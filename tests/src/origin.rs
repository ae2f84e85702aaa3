//! A web server standing in for a vendor's backend, for the outbound HTTP (`http`
//! capability) tests, and the manifest edit that lists such origins.
use anyhow::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback origin answering every request with `body` (or never, when `silent`), and
/// counting what reached it: a refusal must mean nothing was sent.
pub struct Origin {
    pub url: String,
    requests: Arc<AtomicU64>,
}

impl Origin {
    pub async fn serve(body: Vec<u8>, silent: bool) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let body = Arc::new(body);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (counter, body) = (counter.clone(), body.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 8192];
                    if stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    if silent {
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                        return;
                    }
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        Ok(Self { url, requests })
    }

    /// An origin answering `body` to everything.
    pub async fn answering(body: &str) -> Result<Self> {
        Self::serve(body.as_bytes().to_vec(), false).await
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A manifest edit: the first `[[capabilities]]` entry (`http` in the test plugins) lists
/// `origins` as its `hosts`.
pub fn set_http_hosts(origins: &[&Origin]) -> impl FnOnce(&mut toml::Table) {
    let hosts: Vec<toml::Value> = origins.iter().map(|o| toml::Value::String(o.url.clone())).collect();
    move |manifest| {
        if let Some(toml::Value::Array(capabilities)) = manifest.get_mut("capabilities") {
            if let Some(toml::Value::Table(http)) = capabilities.first_mut() {
                http.insert("hosts".into(), toml::Value::Array(hosts));
            }
        }
    }
}

/// `url` as one query parameter's value.
pub fn query_value(url: &str) -> String {
    url.replace(':', "%3A").replace('/', "%2F")
}
