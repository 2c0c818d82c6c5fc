//! Proto <-> domain conversions. Unknown enum numbers and malformed values are InvalidArgument
//! naming the field.

use chrono::{DateTime, Utc};
use prost_types::{ListValue, Struct, Timestamp, value::Kind};
use serde_json::{Map, Number, Value};

use crate::domain::{HealthState, Integration, IntegrationStatus, Platform};
use crate::error::Error;
use crate::proto;

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// `None` for PLATFORM_UNSPECIFIED.
pub fn platform_from_proto(field: &str, v: i32) -> Result<Option<Platform>, Error> {
    use proto::Platform as P;
    let p = P::try_from(v)
        .map_err(|_| Error::invalid_field(field, format!("unknown platform value {v}")))?;
    Ok(Some(match p {
        P::Unspecified => return Ok(None),
        P::Zoom => Platform::Zoom,
        P::Slack => Platform::Slack,
        P::Discord => Platform::Discord,
        P::Outlook => Platform::Outlook,
        P::Monday => Platform::Monday,
        P::Gmail => Platform::Gmail,
        P::Notion => Platform::Notion,
        P::Loom => Platform::Loom,
        P::Fireflies => Platform::Fireflies,
        P::Otter => Platform::Otter,
        P::Granola => Platform::Granola,
        P::Zerodb => Platform::Zerodb,
        P::Zerovoice => Platform::Zerovoice,
        P::Custom => Platform::Custom,
    }))
}

pub fn platform_to_proto(p: Platform) -> proto::Platform {
    use proto::Platform as P;
    match p {
        Platform::Zoom => P::Zoom,
        Platform::Slack => P::Slack,
        Platform::Discord => P::Discord,
        Platform::Outlook => P::Outlook,
        Platform::Monday => P::Monday,
        Platform::Gmail => P::Gmail,
        Platform::Notion => P::Notion,
        Platform::Loom => P::Loom,
        Platform::Fireflies => P::Fireflies,
        Platform::Otter => P::Otter,
        Platform::Granola => P::Granola,
        Platform::Zerodb => P::Zerodb,
        Platform::Zerovoice => P::Zerovoice,
        Platform::Custom => P::Custom,
    }
}

pub fn status_from_proto(field: &str, v: i32) -> Result<Option<IntegrationStatus>, Error> {
    use proto::IntegrationStatus as S;
    let s = S::try_from(v)
        .map_err(|_| Error::invalid_field(field, format!("unknown status value {v}")))?;
    Ok(Some(match s {
        S::Unspecified => return Ok(None),
        S::Pending => IntegrationStatus::Pending,
        S::Connected => IntegrationStatus::Connected,
        S::NeedsReauth => IntegrationStatus::NeedsReauth,
        S::Error => IntegrationStatus::Error,
        S::Revoked => IntegrationStatus::Revoked,
    }))
}

pub fn status_to_proto(s: IntegrationStatus) -> proto::IntegrationStatus {
    use proto::IntegrationStatus as S;
    match s {
        IntegrationStatus::Pending => S::Pending,
        IntegrationStatus::Connected => S::Connected,
        IntegrationStatus::NeedsReauth => S::NeedsReauth,
        IntegrationStatus::Error => S::Error,
        IntegrationStatus::Revoked => S::Revoked,
    }
}

pub fn health_to_proto(h: HealthState) -> proto::HealthState {
    use proto::HealthState as H;
    match h {
        HealthState::Unknown => H::Unknown,
        HealthState::Healthy => H::Healthy,
        HealthState::Degraded => H::Degraded,
        HealthState::NeedsReauth => H::NeedsReauth,
        HealthState::Revoked => H::Revoked,
    }
}

pub fn health_from_proto(field: &str, v: i32) -> Result<Option<HealthState>, Error> {
    use proto::HealthState as H;
    let h = H::try_from(v)
        .map_err(|_| Error::invalid_field(field, format!("unknown health state value {v}")))?;
    Ok(Some(match h {
        H::Unspecified => return Ok(None),
        H::Unknown => HealthState::Unknown,
        H::Healthy => HealthState::Healthy,
        H::Degraded => HealthState::Degraded,
        H::NeedsReauth => HealthState::NeedsReauth,
        H::Revoked => HealthState::Revoked,
    }))
}

pub fn integration(i: Integration) -> proto::Integration {
    proto::Integration {
        name: i.resource_name(),
        id: i.id.to_string(),
        platform: platform_to_proto(i.platform) as i32,
        status: status_to_proto(i.status) as i32,
        display_name: i.display_name,
        metadata: Some(struct_from_json(i.metadata)),
        credential_fields: i.credential_fields,
        scopes: i.scopes,
        health_state: health_to_proto(i.health_state) as i32,
        create_time: Some(timestamp(i.created_at)),
        update_time: Some(timestamp(i.updated_at)),
        provider_account_id: i.provider_account_id,
        status_reason: i.status_reason.unwrap_or_default(),
        credential_expire_time: i.credential_expires_at.map(timestamp),
        last_check_time: i.last_check_at.map(timestamp),
        connection_type: match i.connection_type {
            crate::domain::ConnectionType::Direct => proto::ConnectionType::Direct,
            crate::domain::ConnectionType::Oauth => proto::ConnectionType::Oauth,
        } as i32,
    }
}

pub fn struct_from_json(map: Map<String, Value>) -> Struct {
    Struct {
        fields: map
            .into_iter()
            .map(|(k, v)| (k, value_from_json(v)))
            .collect(),
    }
}

fn value_from_json(v: Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(ListValue {
            values: a.into_iter().map(value_from_json).collect(),
        }),
        Value::Object(o) => Kind::StructValue(struct_from_json(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Struct -> JSON object. NaN and infinities have no JSON form and are rejected.
pub fn struct_to_json(field: &str, s: Struct) -> Result<Map<String, Value>, Error> {
    s.fields
        .into_iter()
        .map(|(k, v)| Ok((k, value_to_json(field, v)?)))
        .collect()
}

fn value_to_json(field: &str, v: prost_types::Value) -> Result<Value, Error> {
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => {
            let n = if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Number::from(n as i64)
            } else {
                Number::from_f64(n)
                    .ok_or_else(|| Error::invalid_field(field, "numbers must be finite"))?
            };
            Value::Number(n)
        }
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(
            l.values
                .into_iter()
                .map(|v| value_to_json(field, v))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(field, s)?),
    })
}

pub fn revocation(r: crate::domain::TokenRevocation) -> proto::TokenRevocation {
    proto::TokenRevocation {
        token_type: r.token_type,
        revoked_upstream: r.revoked_upstream,
        reason: r.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        message: r.message,
    }
}
