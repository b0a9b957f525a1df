//! Metrics of GraphQL operations: `graphql_operations_total` and
//! `graphql_operation_duration_seconds`, labelled by `operation` and `outcome`; each
//! operation of a batch counts on its own.
//!
//! Clients name their operations as they like, so `operation` is not that name but the
//! root field the operation selects, once the schema confirms it has that field: `me`,
//! `login`, `__schema`. An operation selecting more than one root field (aliases and
//! fragments included) is `multiple`; one whose document does not parse, whose operation
//! cannot be told, or whose field the schema lacks is `unknown`. `outcome` is `ok`, or the
//! `extensions.code` of the first error: one of [`ErrorCode`]'s, `INTERNAL` for any other.
//!
//! Requests refused before any operation is read (size, media type, malformed JSON,
//! batch and alias limits) count in `http_requests_total` only.

use std::{cell::RefCell, collections::HashMap, time::Instant};

use juniper::{
    DefaultScalarValue, Definition, ExecutionError, GraphQLError, Operation, OperationType,
    ScalarValue as _, Selection, Value, http::GraphQLRequest, meta::MetaType,
    parser::parse_document_source,
};

use super::Schema;
use crate::{
    error::{ErrorCode, graphql_error_code},
    monitoring::{TimedSeries, record_timed},
};

const MULTIPLE: &str = "multiple";
const UNKNOWN: &str = "unknown";
/// Introspection fields, on every schema without being listed on its root types.
const META_FIELDS: [&str; 3] = ["__typename", "__schema", "__type"];

/// Operation and outcome of the operations each series counts.
type Labels = (String, &'static str);

/// Labels each thread remembers: room for the few documents clients send over and over.
/// Whatever comes past a cap is parsed every time it comes, as without the cache, so no
/// client can make the cache grow.
const KNOWN_LABELS: usize = 256;
/// Bytes of text the labels of a thread hold (documents, names and labels): 2 KiB a
/// label on average, where a cap on labels alone would let in 256 documents of 64 kB.
const KNOWN_BYTES: usize = 512 * 1024;
/// Longest operation name remembered, longer than people write them.
const KNOWN_NAME: usize = 128;

/// A document's label for the operation name that picked its operation.
type NamedLabel = (Option<String>, String);

thread_local! {
    static SERIES: RefCell<HashMap<Labels, TimedSeries>> = RefCell::default();
    static LABELS: RefCell<KnownLabels> = RefCell::default();
}

/// The labels a thread remembers, by document and operation name, within
/// [`KNOWN_LABELS`] and [`KNOWN_BYTES`].
#[derive(Default)]
struct KnownLabels {
    documents: HashMap<String, Vec<NamedLabel>>,
    labels: usize,
    bytes: usize,
}

impl KnownLabels {
    fn get(&self, document: &str, name: Option<&str>) -> Option<&str> {
        self.documents
            .get(document)?
            .iter()
            .find(|(known, _)| known.as_deref() == name)
            .map(|(_, label)| label.as_str())
    }

    /// Remembers `label` for `document` and `name` unless that would pass a cap.
    fn remember(&mut self, document: &str, name: Option<&str>, label: &str) {
        let held = self.documents.get_mut(document);
        let new_document = if held.is_some() { 0 } else { document.len() };
        let bytes = self.bytes + new_document + name.map_or(0, str::len) + label.len();
        if self.labels == KNOWN_LABELS || bytes > KNOWN_BYTES {
            return;
        }
        let named = (name.map(str::to_string), label.to_string());
        match held {
            Some(labels) => labels.push(named),
            None => {
                self.documents.insert(document.to_string(), vec![named]);
            }
        }
        self.labels += 1;
        self.bytes = bytes;
    }
}

/// What juniper answers for one operation.
pub type Executed = Result<(Value, Vec<ExecutionError<DefaultScalarValue>>), GraphQLError>;

/// One operation being timed; does nothing while the process records no metrics.
pub struct OperationMetrics(Option<Started>);

struct Started {
    operation: String,
    started: Instant,
}

impl OperationMetrics {
    /// Labels `request` (parsing its document a second time, only while metrics are on)
    /// and starts the clock.
    pub fn start(schema: &Schema, request: &GraphQLRequest) -> Self {
        if !crate::monitoring::enabled() {
            return Self(None);
        }
        let operation = label(schema, request);
        Self(Some(Started {
            operation,
            started: Instant::now(),
        }))
    }

    pub fn finish(self, executed: &Executed) {
        let Some(Started { operation, started }) = self.0 else {
            return;
        };
        let labels = (operation, outcome(executed));
        record_timed(&SERIES, labels, started.elapsed(), register);
    }
}

fn register((operation, outcome): &Labels) -> TimedSeries {
    let labels = [
        ("operation", operation.clone()),
        ("outcome", (*outcome).to_string()),
    ];
    TimedSeries::new(
        metrics::counter!("graphql_operations_total", &labels),
        metrics::histogram!("graphql_operation_duration_seconds", &labels),
    )
}

/// The operation label of `request`, parsing its document only the first time it comes.
fn label(schema: &Schema, request: &GraphQLRequest) -> String {
    let document = request.query.as_str();
    let name = request.operation_name.as_deref();
    LABELS.with_borrow_mut(|known| {
        if let Some(label) = known.get(document, name) {
            return label.to_string();
        }
        let labelled = labelled(schema, document, name);
        if labelled.remember {
            known.remember(document, name, labelled.label);
        }
        labelled.label.to_string()
    })
}

/// An operation's label, and whether a thread may remember it.
struct Labelled<'a> {
    label: &'a str,
    remember: bool,
}

/// The label of the operation `name` picks in `query`. A name is remembered only when it
/// picks one of the document's operations, which makes it a GraphQL name the parser read
/// in the document: the names a thread holds come from the documents it holds, never from
/// whatever a client sends beside them.
fn labelled<'a>(schema: &Schema, query: &'a str, name: Option<&str>) -> Labelled<'a> {
    let unknown = Labelled {
        label: UNKNOWN,
        remember: name.is_none(),
    };
    // juniper's parser reads scalars and limits from the schema's type information.
    let Ok(document) = parse_document_source(query, &schema.schema) else {
        return unknown;
    };
    let Some(operation) = pick(&document, name) else {
        return unknown;
    };
    Labelled {
        label: root_field(schema, &document, operation).unwrap_or(UNKNOWN),
        remember: name.is_none_or(|name| name.len() <= KNOWN_NAME),
    }
}

/// The operation `name` names, or the only one when `name` is `None`.
fn pick<'d, 'a>(
    document: &'d [Definition<'a, DefaultScalarValue>],
    name: Option<&str>,
) -> Option<&'d Operation<'a, DefaultScalarValue>> {
    let mut operations = document.iter().filter_map(|definition| match definition {
        Definition::Operation(operation) => Some(&operation.item),
        Definition::Fragment(_) => None,
    });
    match name {
        Some(name) => {
            operations.find(|operation| operation.name.is_some_and(|own| own.item == name))
        }
        None => {
            let only = operations.next()?;
            operations.next().is_none().then_some(only)
        }
    }
}

/// The root field `operation` selects, `multiple`, or `None` when unknown.
fn root_field<'a>(
    schema: &Schema,
    document: &[Definition<'a, DefaultScalarValue>],
    operation: &Operation<'a, DefaultScalarValue>,
) -> Option<&'a str> {
    let root = match operation.operation_type {
        OperationType::Query => schema.schema.concrete_query_type(),
        OperationType::Mutation => schema.schema.concrete_mutation_type()?,
        OperationType::Subscription => return None,
    };
    let mut fields = Vec::new();
    collect_fields(
        document,
        &operation.selection_set,
        &mut fields,
        &mut Vec::new(),
    );
    match fields.as_slice() {
        [field] => is_field_of(root, field).then_some(*field),
        [] => None,
        _ => Some(MULTIPLE),
    }
}

/// The names of the fields `selections` select, fragments expanded (each once).
fn collect_fields<'a>(
    document: &[Definition<'a, DefaultScalarValue>],
    selections: &[Selection<'a>],
    fields: &mut Vec<&'a str>,
    expanded: &mut Vec<&'a str>,
) {
    for selection in selections {
        match selection {
            Selection::Field(field) => fields.push(field.item.name.item),
            Selection::InlineFragment(fragment) => {
                collect_fields(document, &fragment.item.selection_set, fields, expanded);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.item.name.item;
                if expanded.contains(&name) {
                    continue;
                }
                expanded.push(name);
                let fragment = document.iter().find_map(|definition| match definition {
                    Definition::Fragment(fragment) if fragment.item.name.item == name => {
                        Some(&fragment.item.selection_set)
                    }
                    _ => None,
                });
                if let Some(selections) = fragment {
                    collect_fields(document, selections, fields, expanded);
                }
            }
        }
    }
}

fn is_field_of(root: &MetaType, field: &str) -> bool {
    META_FIELDS.contains(&field) || root.field_by_name(field).is_some()
}

fn outcome(executed: &Executed) -> &'static str {
    match executed {
        Ok((_, errors)) => errors
            .first()
            .map_or("ok", |error| code_of(error.error().extensions()).as_str()),
        Err(error) => graphql_error_code(error).as_str(),
    }
}

fn code_of(extensions: &Value) -> ErrorCode {
    extensions
        .as_object_value()
        .and_then(|extensions| extensions.get_field_value("code"))
        .and_then(Value::as_scalar)
        .and_then(|code| code.try_as_str())
        .and_then(ErrorCode::parse)
        .unwrap_or(ErrorCode::Internal)
}

#[cfg(test)]
mod tests {
    use juniper::{FieldError, IntoFieldError as _};

    use super::*;
    use crate::{config::Settings, error::AppError};

    fn schema() -> Schema {
        let settings = Settings::load().expect("settings load");
        crate::graphql::schema::build(&settings.graphql)
    }

    fn request(query: &str, name: Option<&str>) -> GraphQLRequest {
        let body = serde_json::json!({ "query": query, "operationName": name });
        serde_json::from_value(body).unwrap()
    }

    /// The label of `query`'s operation `name`; `None` when unknown.
    fn label(query: &str, name: Option<&str>) -> Option<String> {
        let labelled = labelled(&schema(), query, name);
        Some(labelled.label)
            .filter(|label| *label != UNKNOWN)
            .map(str::to_string)
    }

    /// The labels and bytes this thread remembers, counted from what its cache holds.
    fn held() -> (usize, usize) {
        LABELS.with_borrow(|known| {
            let held = known
                .documents
                .iter()
                .fold((0, 0), |(labels, bytes), (document, named)| {
                    let text: usize = named
                        .iter()
                        .map(|(name, label)| name.as_ref().map_or(0, String::len) + label.len())
                        .sum();
                    (labels + named.len(), bytes + document.len() + text)
                });
            assert_eq!(held, (known.labels, known.bytes), "the counts drifted");
            held
        })
    }

    #[test]
    fn new_documents_past_the_cap_are_labelled_but_not_remembered() {
        let schema = schema();

        for alias in 0..KNOWN_LABELS + 10 {
            let query = ["{ a", &alias.to_string(), ": apiVersion }"].concat();
            assert_eq!(super::label(&schema, &request(&query, None)), "apiVersion");
        }
        let unknown = super::label(&schema, &request("{ nothing }", None));

        assert_eq!(unknown, UNKNOWN);
        assert_eq!(held().0, KNOWN_LABELS);
    }

    #[test]
    fn a_stream_of_new_operation_names_is_remembered_only_up_to_the_cap() {
        let schema = schema();

        for number in 0..KNOWN_LABELS {
            let (a, b) = (format!("A{number}"), format!("B{number}"));
            let query = [
                "query ",
                &a,
                " { apiVersion } query ",
                &b,
                " { health { ready } }",
            ]
            .concat();
            assert_eq!(
                super::label(&schema, &request(&query, Some(&a))),
                "apiVersion"
            );
            assert_eq!(super::label(&schema, &request(&query, Some(&b))), "health");
        }

        let (labels, bytes) = held();
        assert_eq!(labels, KNOWN_LABELS);
        assert!(bytes <= KNOWN_BYTES, "{bytes} bytes");
    }

    #[test]
    fn a_stream_of_large_documents_is_remembered_only_up_to_the_byte_cap() {
        let schema = schema();
        let comment = ["#", &"x".repeat(10_000), "\n"].concat();

        for number in 0..KNOWN_LABELS {
            let name = format!("Q{number}");
            let query = [&comment, "query ", &name, " { apiVersion }"].concat();
            assert_eq!(
                super::label(&schema, &request(&query, Some(&name))),
                "apiVersion"
            );
        }

        let (labels, bytes) = held();
        assert!(labels < KNOWN_LABELS, "{labels} labels");
        assert!(bytes <= KNOWN_BYTES, "{bytes} bytes");
        assert!(
            bytes > KNOWN_BYTES - 2 * comment.len(),
            "filled to {bytes} bytes only"
        );
    }

    #[test]
    fn names_that_pick_no_operation_of_the_document_are_not_remembered() {
        let schema = schema();
        let long = "L".repeat(KNOWN_NAME + 1);
        let declares_long = ["query ", &long, " { apiVersion }"].concat();
        let refused = [
            ("{ apiVersion }", "drop table; --", UNKNOWN),
            ("{ apiVersion }", "Absent", UNKNOWN),
            ("query A { apiVersion }", "B", UNKNOWN),
            ("query A { apiVersion", "A", UNKNOWN),
            (&declares_long, &long, "apiVersion"),
        ];

        for (query, name, expected) in refused {
            let label = super::label(&schema, &request(query, Some(name)));
            assert_eq!(label, expected, "{query}");
        }
        let after_refused = held();
        super::label(&schema, &request("query A { apiVersion }", Some("A")));

        assert_eq!(after_refused, (0, 0));
        assert_eq!(held().0, 1, "a name that picks an operation is remembered");
    }

    #[test]
    fn an_operation_is_labelled_by_its_root_field_whatever_its_name() {
        assert_eq!(
            label("query AnyName { apiVersion }", None).as_deref(),
            Some("apiVersion")
        );
        assert_eq!(
            label("{ renamed: apiVersion }", None).as_deref(),
            Some("apiVersion")
        );
        assert_eq!(
            label("{ __schema { queryType { name } } }", None).as_deref(),
            Some("__schema")
        );
    }

    #[test]
    fn several_root_fields_are_multiple() {
        assert_eq!(
            label("{ apiVersion health { ready } }", None).as_deref(),
            Some(MULTIPLE)
        );
        assert_eq!(
            label("{ a: apiVersion b: apiVersion }", None).as_deref(),
            Some(MULTIPLE)
        );
        assert_eq!(
            label(
                "{ ...F apiVersion } fragment F on Query { health { ready } }",
                None
            )
            .as_deref(),
            Some(MULTIPLE)
        );
    }

    #[test]
    fn fragments_at_the_root_are_looked_into() {
        assert_eq!(
            label("{ ...F } fragment F on Query { apiVersion }", None).as_deref(),
            Some("apiVersion")
        );
        assert_eq!(
            label("{ ... on Query { apiVersion } }", None).as_deref(),
            Some("apiVersion")
        );
    }

    #[test]
    fn fields_the_schema_lacks_and_unparsable_documents_are_unknown() {
        assert_eq!(label("{ attackerChosenName }", None).as_deref(), None);
        assert_eq!(label("mutation { apiVersion }", None).as_deref(), None);
        assert_eq!(label("{ apiVersion", None).as_deref(), None);
        assert_eq!(label("", None).as_deref(), None);
    }

    #[test]
    fn the_operation_name_picks_among_several_operations() {
        let document = "query A { apiVersion } query B { health { ready } }";
        assert_eq!(label(document, Some("B")).as_deref(), Some("health"));
        assert_eq!(label(document, Some("C")).as_deref(), None);
        assert_eq!(label(document, None).as_deref(), None);
    }

    #[test]
    fn the_outcome_is_the_first_error_code_or_ok() {
        let error = |e: FieldError| ExecutionError::at_origin(e);
        let limited: FieldError = AppError::RateLimited {
            retry_after_secs: 1,
        }
        .into_field_error();
        let foreign = FieldError::new("no code", Value::null());

        assert_eq!(outcome(&Ok((Value::null(), vec![]))), "ok");
        assert_eq!(
            outcome(&Ok((
                Value::null(),
                vec![error(limited), error(foreign.clone())]
            ))),
            "RATE_LIMITED"
        );
        assert_eq!(
            outcome(&Ok((Value::null(), vec![error(foreign)]))),
            "INTERNAL"
        );
    }
}
