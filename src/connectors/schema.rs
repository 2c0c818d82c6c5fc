//! The parameters of an operation, declared once with a small builder: the declaration renders
//! as the JSON Schema that `ListOperations` publishes, checks incoming params before anything is
//! sent (InvalidArgument naming each bad field as `params.<path>`), and fills in defaults, so the
//! typed params struct never needs serde defaults of its own.

use serde_json::{Map, Value, json};

use crate::error::{Error, FieldViolation};

/// Free-form objects (metadata, GraphQL variables) larger than this as JSON are refused.
const MAX_OBJECT_BYTES: usize = 256 * 1024;

/// The parameters of one operation: a closed object.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    fields: Vec<Field>,
}

#[derive(Clone, Debug)]
pub struct Field {
    name: &'static str,
    description: &'static str,
    required: bool,
    default: Option<Value>,
    ty: Ty,
}

#[derive(Clone, Debug)]
pub enum Ty {
    String {
        min: usize,
        max: usize,
        format: Format,
    },
    Integer {
        min: i64,
        max: i64,
    },
    Number,
    Boolean,
    Array {
        items: Box<Ty>,
        min: usize,
        max: usize,
    },
    /// A closed object with its own fields.
    Object(Vec<Field>),
    /// Any JSON object (metadata, variables), bounded in size.
    AnyObject,
}

#[derive(Clone, Debug)]
pub enum Format {
    /// Any printable text (newlines and tabs allowed).
    Text,
    /// A provider identifier that goes into a URL path: letters, digits and `._:@-`, never `.`
    /// or `..` on its own.
    Id,
    /// `YYYY-MM-DD` or an RFC 3339 date-time.
    Date,
    OneOf(&'static [&'static str]),
    Pattern(&'static Pattern),
}

/// A string pattern: the regex shown in the schema, and the hand-written check that enforces it
/// (so no regex engine is needed).
#[derive(Debug)]
pub struct Pattern {
    pub pattern: &'static str,
    pub check: fn(&str) -> bool,
    /// Completes "must be ..." in the violation.
    pub hint: &'static str,
    /// A valid value, for schema tests.
    pub sample: &'static str,
}

impl Ty {
    pub fn text(max: usize) -> Self {
        Ty::String {
            min: 1,
            max,
            format: Format::Text,
        }
    }

    pub fn id() -> Self {
        Ty::String {
            min: 1,
            max: 256,
            format: Format::Id,
        }
    }

    pub fn number() -> Self {
        Ty::Number
    }
}

impl Field {
    fn new(name: &'static str, description: &'static str, ty: Ty) -> Self {
        Self {
            name,
            description,
            required: false,
            default: None,
            ty,
        }
    }

    /// Printable text of 1 to `max` characters.
    pub fn text(name: &'static str, description: &'static str, max: usize) -> Self {
        Self::new(name, description, Ty::text(max))
    }

    /// An identifier safe in a URL path.
    pub fn id(name: &'static str, description: &'static str) -> Self {
        Self::new(name, description, Ty::id())
    }

    pub fn date(name: &'static str, description: &'static str) -> Self {
        Self::new(
            name,
            description,
            Ty::String {
                min: 1,
                max: 40,
                format: Format::Date,
            },
        )
    }

    pub fn one_of(
        name: &'static str,
        description: &'static str,
        values: &'static [&'static str],
    ) -> Self {
        Self::new(
            name,
            description,
            Ty::String {
                min: 1,
                max: 64,
                format: Format::OneOf(values),
            },
        )
    }

    pub fn pattern(name: &'static str, description: &'static str, p: &'static Pattern) -> Self {
        Self::new(
            name,
            description,
            Ty::String {
                min: 1,
                max: 2048,
                format: Format::Pattern(p),
            },
        )
    }

    pub fn integer(name: &'static str, description: &'static str, min: i64, max: i64) -> Self {
        Self::new(name, description, Ty::Integer { min, max })
    }

    pub fn boolean(name: &'static str, description: &'static str) -> Self {
        Self::new(name, description, Ty::Boolean)
    }

    pub fn array(
        name: &'static str,
        description: &'static str,
        items: Ty,
        min: usize,
        max: usize,
    ) -> Self {
        Self::new(
            name,
            description,
            Ty::Array {
                items: Box::new(items),
                min,
                max,
            },
        )
    }

    pub fn object(name: &'static str, description: &'static str, fields: Vec<Field>) -> Self {
        Self::new(name, description, Ty::Object(fields))
    }

    pub fn any_object(name: &'static str, description: &'static str) -> Self {
        Self::new(name, description, Ty::AnyObject)
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Filled in when the caller leaves the field out.
    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Self {
        Self { fields }
    }

    /// No parameters.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The JSON Schema (draft 2020-12 vocabulary) of the parameters.
    pub fn to_json(&self) -> Value {
        let mut schema = object_schema(&self.fields);
        if let Value::Object(m) = &mut schema {
            m.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
        }
        schema
    }

    /// Checks `params` against the declaration, collecting every violation, and returns them
    /// with defaults filled in.
    pub fn check(&self, params: Map<String, Value>) -> Result<Map<String, Value>, Error> {
        let mut violations = Vec::new();
        let out = check_object(&self.fields, params, "params", &mut violations);
        if violations.is_empty() {
            Ok(out)
        } else {
            Err(Error::invalid_fields(violations))
        }
    }

    /// Every field set to a valid sample, for tests that the typed struct accepts the schema.
    pub fn sample(&self, only_required: bool) -> Map<String, Value> {
        sample_object(&self.fields, only_required)
    }
}

fn object_schema(fields: &[Field]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut s = ty_schema(&f.ty);
            if let Value::Object(m) = &mut s {
                m.insert("description".into(), json!(f.description));
                if let Some(d) = &f.default {
                    m.insert("default".into(), d.clone());
                }
            }
            (f.name.to_owned(), s)
        })
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn ty_schema(ty: &Ty) -> Value {
    match ty {
        Ty::String { min, max, format } => {
            let mut s = json!({"type": "string", "minLength": min, "maxLength": max});
            if let Value::Object(m) = &mut s {
                match format {
                    Format::Text => {}
                    Format::Id => {
                        m.insert("pattern".into(), json!("^[A-Za-z0-9._:@-]+$"));
                    }
                    Format::Date => {
                        m.insert(
                            "anyOf".into(),
                            json!([{"format": "date"}, {"format": "date-time"}]),
                        );
                    }
                    Format::OneOf(values) => {
                        m.insert("enum".into(), json!(values));
                    }
                    Format::Pattern(p) => {
                        m.insert("pattern".into(), json!(p.pattern));
                    }
                }
            }
            s
        }
        Ty::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Ty::Number => json!({"type": "number"}),
        Ty::Boolean => json!({"type": "boolean"}),
        Ty::Array { items, min, max } => {
            json!({"type": "array", "items": ty_schema(items), "minItems": min, "maxItems": max})
        }
        Ty::Object(fields) => object_schema(fields),
        Ty::AnyObject => json!({"type": "object"}),
    }
}

fn check_object(
    fields: &[Field],
    mut input: Map<String, Value>,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for key in input.keys() {
        if !fields.iter().any(|f| f.name == key) {
            let shown: String = key.chars().take(64).collect();
            violations.push(FieldViolation::new(
                format!("{path}.{shown}"),
                "is not a parameter of this operation",
            ));
        }
    }
    for f in fields {
        let field_path = format!("{path}.{}", f.name);
        match input.remove(f.name) {
            None | Some(Value::Null) => {
                if let Some(d) = &f.default {
                    out.insert(f.name.to_owned(), d.clone());
                } else if f.required {
                    violations.push(FieldViolation::new(field_path, "is required"));
                }
            }
            Some(v) => {
                if let Some(v) = check_value(&f.ty, v, &field_path, violations) {
                    out.insert(f.name.to_owned(), v);
                }
            }
        }
    }
    out
}

fn check_value(
    ty: &Ty,
    v: Value,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<Value> {
    let mut bad = |why: String| {
        violations.push(FieldViolation::new(path, why));
        None
    };
    match (ty, v) {
        (Ty::String { min, max, format }, Value::String(s)) => {
            let len = s.chars().count();
            if len < *min {
                return bad("must not be empty".into());
            }
            if len > *max {
                return bad(format!("must be at most {max} characters"));
            }
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return bad("must not contain control characters".into());
            }
            match format {
                Format::Text => {}
                Format::Id => {
                    let ok = s.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')
                    }) && s != "."
                        && s != "..";
                    if !ok {
                        return bad("must be an identifier (letters, digits and ._:@-)".into());
                    }
                }
                Format::Date => {
                    let ok = chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_ok()
                        || chrono::DateTime::parse_from_rfc3339(&s).is_ok();
                    if !ok {
                        return bad("must be a date (YYYY-MM-DD) or an RFC 3339 time".into());
                    }
                }
                Format::OneOf(values) => {
                    if !values.contains(&s.as_str()) {
                        return bad(format!("must be one of {}", values.join(", ")));
                    }
                }
                Format::Pattern(p) => {
                    if !(p.check)(&s) {
                        return bad(format!("must be {}", p.hint));
                    }
                }
            }
            Some(Value::String(s))
        }
        (Ty::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
            Some(i) if (*min..=*max).contains(&i) => Some(Value::Number(n)),
            Some(_) => bad(format!("must be between {min} and {max}")),
            None => bad("must be a whole number".into()),
        },
        (Ty::Number, Value::Number(n)) => Some(Value::Number(n)),
        (Ty::Boolean, Value::Bool(b)) => Some(Value::Bool(b)),
        (Ty::Array { items, min, max }, Value::Array(a)) => {
            if a.len() < *min {
                return bad(format!("must have at least {min} items"));
            }
            if a.len() > *max {
                return bad(format!("must have at most {max} items"));
            }
            let mut out = Vec::with_capacity(a.len());
            for (i, item) in a.into_iter().enumerate() {
                if let Some(v) = check_value(items, item, &format!("{path}[{i}]"), violations) {
                    out.push(v);
                }
            }
            Some(Value::Array(out))
        }
        (Ty::Object(fields), Value::Object(m)) => {
            Some(Value::Object(check_object(fields, m, path, violations)))
        }
        (Ty::AnyObject, Value::Object(m)) => {
            let size = serde_json::to_vec(&m)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > MAX_OBJECT_BYTES {
                return bad(format!("must be at most {MAX_OBJECT_BYTES} bytes as JSON"));
            }
            Some(Value::Object(m))
        }
        (ty, _) => bad(format!("must be {}", type_name(ty))),
    }
}

fn type_name(ty: &Ty) -> &'static str {
    match ty {
        Ty::String { .. } => "a string",
        Ty::Integer { .. } => "an integer",
        Ty::Number => "a number",
        Ty::Boolean => "true or false",
        Ty::Array { .. } => "a list",
        Ty::Object(_) | Ty::AnyObject => "an object",
    }
}

fn sample_object(fields: &[Field], only_required: bool) -> Map<String, Value> {
    fields
        .iter()
        .filter(|f| f.required || !only_required)
        .map(|f| (f.name.to_owned(), sample(&f.ty, only_required)))
        .collect()
}

fn sample(ty: &Ty, only_required: bool) -> Value {
    match ty {
        Ty::String { format, min, .. } => match format {
            Format::Text => json!("x".repeat((*min).max(1))),
            Format::Id => json!("id-1"),
            Format::Date => json!("2024-05-01"),
            Format::OneOf(values) => json!(values.first().copied().unwrap_or_default()),
            Format::Pattern(p) => json!(p.sample),
        },
        Ty::Integer { min, .. } => json!(min),
        Ty::Number => json!(0.5),
        Ty::Boolean => json!(true),
        Ty::Array { items, min, .. } => Value::Array(
            (0..(*min).max(1))
                .map(|_| sample(items, only_required))
                .collect(),
        ),
        Ty::Object(fields) => Value::Object(sample_object(fields, only_required)),
        Ty::AnyObject => json!({"k": "v"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("id", "an id").required(),
            Field::integer("limit", "page size", 1, 50).default(json!(20)),
            Field::one_of("format", "audio format", &["mp3", "wav"]),
            Field::array(
                "items",
                "things",
                Ty::Object(vec![Field::text("name", "a name", 10).required()]),
                0,
                2,
            ),
        ])
    }

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("tests pass objects"),
        }
    }

    fn fields(err: &Error) -> Vec<&str> {
        err.violations().iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn defaults_are_filled_in_and_valid_params_pass() {
        let out = schema().check(params(json!({"id": "abc-1"}))).unwrap();
        assert_eq!(Value::Object(out), json!({"id": "abc-1", "limit": 20}));
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let err = schema()
            .check(params(json!({
                "limit": 500,
                "format": "ogg",
                "extra": 1,
                "items": [{"name": ""}, {"nope": 1}],
            })))
            .unwrap_err();
        assert_eq!(
            fields(&err),
            vec![
                "params.extra",
                "params.id",
                "params.limit",
                "params.format",
                "params.items[0].name",
                "params.items[1].nope",
                "params.items[1].name",
            ]
        );
    }

    #[test]
    fn ids_that_could_walk_a_url_path_are_refused() {
        for bad in ["..", ".", "a/b", "a b", "a%2f", "a?b", "a#b", "\\x"] {
            let err = schema().check(params(json!({"id": bad}))).unwrap_err();
            assert_eq!(fields(&err), vec!["params.id"], "{bad}");
        }
    }

    #[test]
    fn wrong_types_name_the_expected_type() {
        let err = schema()
            .check(params(json!({"id": 5, "limit": "ten"})))
            .unwrap_err();
        assert_eq!(fields(&err), vec!["params.id", "params.limit"]);
        assert_eq!(err.violations()[0].description, "must be a string");
        assert_eq!(err.violations()[1].description, "must be an integer");
    }

    #[test]
    fn the_json_schema_is_closed_and_lists_required_fields_and_defaults() {
        let s = schema().to_json();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["id"]));
        assert_eq!(s["properties"]["limit"]["default"], 20);
        assert_eq!(s["properties"]["format"]["enum"], json!(["mp3", "wav"]));
        assert_eq!(
            s["properties"]["items"]["items"]["additionalProperties"],
            false
        );
    }
}
