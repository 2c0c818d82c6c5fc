//! Size- and time-limited reading of the answers of outbound HTTP requests (providers, OAuth
//! token endpoints): a hostile server cannot make us buffer more than we allow.

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    TooLarge,
    TimedOut,
    Network,
}

/// Reads a body, refusing one longer than `limit` without reading it all.
pub async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, ReadError> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ReadError::TooLarge);
    }
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return Err(ReadError::TimedOut),
            Ok(Err(e)) if e.is_timeout() => return Err(ReadError::TimedOut),
            Ok(Err(_)) => return Err(ReadError::Network),
            Ok(Ok(None)) => return Ok(buf.freeze()),
            Ok(Ok(Some(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}
