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
    DefaultScalarValue, Definition, ExecutionError, GraphQLError, OperationType, ScalarValue as _,
    Selection, Value, http::GraphQLRequest, meta::MetaType, parser::parse_document_source,
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

/// Documents whose label each thread remembers. Clients send the same few documents
/// over and over; a new one past the cap is parsed every time it comes, as without the
/// cache, so no client can make it grow.
const KNOWN_DOCUMENTS: usize = 256;

/// A document's label for the operation name that picked its operation.
type NamedLabel = (Option<String>, String);

thread_local! {
    static SERIES: RefCell<HashMap<Labels, TimedSeries>> = RefCell::default();
    static LABELS: RefCell<HashMap<String, Vec<NamedLabel>>> = RefCell::default();
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
    let name = request.operation_name.as_deref();
    LABELS.with_borrow_mut(|labels| {
        let known = labels.get(request.query.as_str()).and_then(|operations| {
            operations
                .iter()
                .find(|(known, _)| known.as_deref() == name)
                .map(|(_, label)| label.clone())
        });
        if let Some(label) = known {
            return label;
        }
        let label = root_field(schema, &request.query, name)
            .unwrap_or(UNKNOWN)
            .to_string();
        if labels.len() < KNOWN_DOCUMENTS {
            labels
                .entry(request.query.clone())
                .or_default()
                .push((name.map(str::to_string), label.clone()));
        }
        label
    })
}

/// The root field the chosen operation selects, `multiple`, or `None` when unknown.
fn root_field<'a>(schema: &Schema, query: &'a str, name: Option<&str>) -> Option<&'a str> {
    // juniper's parser reads scalars and limits from the schema's type information.
    let document = parse_document_source(query, &schema.schema).ok()?;
    let mut operations = document.iter().filter_map(|definition| match definition {
        Definition::Operation(operation) => Some(&operation.item),
        Definition::Fragment(_) => None,
    });
    let operation = match name {
        Some(name) => {
            operations.find(|operation| operation.name.is_some_and(|own| own.item == name))?
        }
        None => {
            let only = operations.next()?;
            if operations.next().is_some() {
                return None;
            }
            only
        }
    };
    let root = match operation.operation_type {
        OperationType::Query => schema.schema.concrete_query_type(),
        OperationType::Mutation => schema.schema.concrete_mutation_type()?,
        OperationType::Subscription => return None,
    };
    let mut fields = Vec::new();
    collect_fields(
        &document,
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

    fn label(query: &str, name: Option<&str>) -> Option<String> {
        let settings = Settings::load().expect("settings load");
        let schema = crate::graphql::schema::build(&settings.graphql);
        root_field(&schema, query, name).map(str::to_string)
    }

    #[test]
    fn new_documents_past_the_cap_are_labelled_but_not_remembered() {
        let settings = Settings::load().expect("settings load");
        let schema = crate::graphql::schema::build(&settings.graphql);
        let request = |query: String| -> GraphQLRequest {
            serde_json::from_value(serde_json::json!({ "query": query })).unwrap()
        };

        for alias in 0..KNOWN_DOCUMENTS + 10 {
            let query = ["{ a", &alias.to_string(), ": apiVersion }"].concat();
            assert_eq!(super::label(&schema, &request(query)), "apiVersion");
        }
        let unknown = super::label(&schema, &request("{ nothing }".into()));

        assert_eq!(unknown, UNKNOWN);
        assert_eq!(LABELS.with_borrow(HashMap::len), KNOWN_DOCUMENTS);
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
