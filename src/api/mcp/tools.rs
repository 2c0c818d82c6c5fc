//! The tool catalogue: one tool per connector operation (`slack.send_message` is
//! `slack_send_message`) plus `list_integrations` and `check_integration`, and how a caller's
//! list is made: only platforms the workspace has live integrations of, only read tools for
//! viewers, sorted by name, in pages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

use crate::domain::{Caller, Integration, Platform, Role};
use crate::error::Error;
use crate::service::operations::{Kind, Operation};

pub const LIST_INTEGRATIONS: &str = "list_integrations";
pub const CHECK_INTEGRATION: &str = "check_integration";

/// Tools per `tools/list` page: a workspace with every platform connected pages, a usual one
/// does not.
pub const PAGE_SIZE: usize = 50;

/// One operation as a tool.
pub struct OperationTool {
    pub tool: String,
    pub operation: String,
    pub platform: Platform,
    pub description: &'static str,
    pub writes: bool,
    /// Takes and answers page tokens.
    pub pages: bool,
    /// The operation's params schema (an object schema).
    schema: Map<String, Value>,
}

/// Every tool that can exist, built once from the registry.
pub struct Catalogue {
    operations: Vec<OperationTool>,
    by_tool: HashMap<String, usize>,
}

/// What a tool name means.
pub enum Named<'a> {
    Operation(&'a OperationTool),
    ListIntegrations,
    CheckIntegration,
}

/// Real clients reject anything else (Claude Desktop refuses the whole list).
pub fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `platform.operation` -> `platform_operation`.
pub fn tool_name(operation: &str) -> String {
    operation.replace('.', "_")
}

impl Catalogue {
    /// Downloads stream bytes, which a tool result cannot carry: they stay gRPC-only.
    pub fn new<'a>(operations: impl IntoIterator<Item = &'a Operation>) -> Self {
        let operations: Vec<OperationTool> = operations
            .into_iter()
            .filter(|op| op.kind != Kind::Download)
            .map(|op| OperationTool {
                tool: tool_name(&op.name),
                operation: op.name.clone(),
                platform: op.platform,
                description: op.description,
                writes: op.writes,
                pages: op.kind == Kind::List,
                schema: match op.schema.to_json() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
            })
            .collect();
        let by_tool = operations
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tool.clone(), i))
            .collect();
        Self {
            operations,
            by_tool,
        }
    }

    pub fn named(&self, name: &str) -> Option<Named<'_>> {
        match name {
            LIST_INTEGRATIONS => Some(Named::ListIntegrations),
            CHECK_INTEGRATION => Some(Named::CheckIntegration),
            _ => self
                .by_tool
                .get(name)
                .map(|&i| Named::Operation(&self.operations[i])),
        }
    }

    /// Every tool name, for bounded metric labels and tests.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [LIST_INTEGRATIONS, CHECK_INTEGRATION]
            .into_iter()
            .chain(self.operations.iter().map(|t| t.tool.as_str()))
    }

    /// The caller's tools, sorted by name: operations of the platforms `live` has, read-only
    /// ones for viewers; `check_integration` for members and up (it records a check).
    pub fn for_caller(&self, caller: &Caller, live: &[Integration]) -> Vec<Tool> {
        let mut by_platform: BTreeMap<Platform, Vec<&Integration>> = BTreeMap::new();
        for i in live {
            by_platform.entry(i.platform).or_default().push(i);
        }
        let viewer = caller.role == Role::Viewer;
        let mut tools: Vec<Tool> = self
            .operations
            .iter()
            .filter(|t| !(viewer && t.writes))
            .filter_map(|t| {
                let choices = by_platform.get(&t.platform)?;
                Some(t.to_tool(choices))
            })
            .collect();
        tools.push(list_integrations_tool());
        if !viewer {
            tools.push(check_integration_tool(&live.iter().collect::<Vec<_>>()));
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        tools
    }
}

impl OperationTool {
    fn to_tool(&self, choices: &[&Integration]) -> Tool {
        let mut schema = self.schema.clone();
        let properties = schema.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = properties {
            p.insert(
                "integration".into(),
                integration_property(self.platform, choices),
            );
            if self.pages {
                p.insert(
                    "page_token".into(),
                    json!({
                        "type": "string",
                        "description": "the next_page_token of the previous page; omit for the first page",
                    }),
                );
            }
        }
        if choices.len() != 1
            && let Some(Value::Array(required)) = schema.get_mut("required")
        {
            required.push(json!("integration"));
        }
        let destructive = self.writes && destructive(&self.operation);
        let annotations = ToolAnnotations::with_title(format!(
            "{}: {}",
            self.platform.title(),
            self.operation
                .split_once('.')
                .map_or(self.operation.as_str(), |(_, op)| op)
                .replace('_', " ")
        ))
        .read_only(!self.writes)
        .destructive(destructive)
        .open_world(true);
        let mut tool = Tool::new(
            self.tool.clone(),
            self.description,
            Arc::new(JsonObject::from_iter(schema)),
        );
        tool.annotations = Some(annotations);
        tool
    }
}

/// Deletes and sends cannot be taken back.
fn destructive(operation: &str) -> bool {
    let op = operation.split_once('.').map_or(operation, |(_, op)| op);
    ["delete", "send", "remove", "archive"]
        .iter()
        .any(|verb| op == *verb || op.starts_with(&format!("{verb}_")))
}

/// `integration`: optional when there is one choice, otherwise required and listing them.
fn integration_property(platform: Platform, choices: &[&Integration]) -> Value {
    match choices {
        [one] => json!({
            "type": "string",
            "description": format!(
                "the {} integration to use (an id or workspaces/{{w}}/integrations/{{id}}); defaults to the workspace's only one, {} ({})",
                platform.title(), one.id, one.display_name
            ),
        }),
        many => json!({
            "type": "string",
            "description": format!(
                "the {} integration to use; the workspace has {}: {}",
                platform.title(),
                many.len(),
                describe(many)
            ),
            "enum": many.iter().map(|i| i.id.to_string()).collect::<Vec<_>>(),
        }),
    }
}

/// `id (display name)`, comma-separated, for messages naming the choices.
pub fn describe(choices: &[&Integration]) -> String {
    if choices.is_empty() {
        return "none yet".to_owned();
    }
    choices
        .iter()
        .map(|i| format!("{} ({})", i.id, i.display_name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_integrations_tool() -> Tool {
    let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
    let mut tool = Tool::new(
        LIST_INTEGRATIONS,
        "The workspace's live integrations: name, id, platform, display name and health state. \
         Pass an id as `integration` to a platform's tools.",
        Arc::new(object(schema)),
    );
    tool.annotations = Some(
        ToolAnnotations::with_title("List integrations")
            .read_only(true)
            .destructive(false)
            .open_world(false),
    );
    tool
}

fn check_integration_tool(live: &[&Integration]) -> Tool {
    let mut schema = json!({
        "type": "object",
        "properties": {"integration": {
            "type": "string",
            "description": format!(
                "the integration to check (an id or workspaces/{{w}}/integrations/{{id}}); the workspace has: {}",
                describe(live)
            ),
        }},
        "required": [],
        "additionalProperties": false,
    });
    if live.len() != 1 {
        schema["required"] = json!(["integration"]);
    }
    let mut tool = Tool::new(
        CHECK_INTEGRATION,
        "Runs the integration's health check now (one identity call to the platform), records it, \
         and answers its state, reason and latency.",
        Arc::new(object(schema)),
    );
    tool.annotations = Some(
        ToolAnnotations::with_title("Check integration")
            .read_only(false)
            .destructive(false)
            .idempotent(true)
            .open_world(true),
    );
    tool
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

/// The page `cursor` names (opaque: base64 of the offset) and the next page's cursor.
pub fn page(tools: Vec<Tool>, cursor: Option<&str>) -> Result<(Vec<Tool>, Option<String>), Error> {
    let start = match cursor {
        None => 0,
        Some(c) => decode_cursor(c)
            .ok_or_else(|| Error::invalid_field("cursor", "is not a cursor this server issued"))?,
    };
    if start > tools.len() {
        return Err(Error::invalid_field(
            "cursor",
            "is past the end of the list",
        ));
    }
    let end = (start + PAGE_SIZE).min(tools.len());
    let next = (end < tools.len()).then(|| encode_cursor(end));
    Ok((
        tools.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("tools:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("tools:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_made_up_one_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(50)), Some(50));
        assert_eq!(decode_cursor("50"), None);
        assert!(page(Vec::new(), Some("bogus")).is_err());
    }

    #[test]
    fn deletes_and_sends_are_destructive() {
        assert!(destructive("slack.send_message"));
        assert!(destructive("monday.delete_item"));
        assert!(!destructive("monday.create_item"));
        assert!(!destructive("notion.update_page"));
    }
}
