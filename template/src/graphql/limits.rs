//! Limits juniper does not enforce itself: operations per batch and aliases per document.
//!
//! Depth and field-count limits are set on the schema (`schema::build`). All limits are
//! checked before anything executes, so a hostile document costs no more than its parse.

use juniper::{
    http::{GraphQLBatchRequest, GraphQLRequest},
    parser::{Lexer, Token},
};

use super::GraphqlSettings;
use crate::error::AppError;

#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_aliases: usize,
    pub max_batch: usize,
}

impl From<&GraphqlSettings> for RequestLimits {
    fn from(settings: &GraphqlSettings) -> Self {
        Self {
            max_aliases: settings.max_aliases,
            max_batch: settings.max_batch.get(),
        }
    }
}

impl RequestLimits {
    /// # Errors
    /// `QueryTooComplex` for an oversized batch or too many aliases, `BadRequest` for an
    /// empty batch.
    pub fn check(&self, request: &GraphQLBatchRequest) -> Result<(), AppError> {
        match request {
            GraphQLBatchRequest::Single(operation) => self.check_operation(operation),
            GraphQLBatchRequest::Batch(operations) => {
                if operations.is_empty() {
                    return Err(AppError::BadRequest("the batch holds no operation".into()));
                }
                if operations.len() > self.max_batch {
                    return Err(AppError::QueryTooComplex(format!(
                        "a batch may hold at most {} operations",
                        self.max_batch
                    )));
                }
                operations
                    .iter()
                    .try_for_each(|operation| self.check_operation(operation))
            }
        }
    }

    fn check_operation(&self, operation: &GraphQLRequest) -> Result<(), AppError> {
        if count_aliases(&operation.query) > self.max_aliases {
            return Err(AppError::QueryTooComplex(format!(
                "a document may hold at most {} aliases",
                self.max_aliases
            )));
        }
        Ok(())
    }
}

/// Counts `alias:` pairs. A name followed by a colon outside parentheses can only be an
/// alias: arguments, variable definitions and input objects all sit inside `(…)`.
/// A lexing error stops the count; juniper reports it when it parses the document.
fn count_aliases(query: &str) -> usize {
    let mut aliases = 0;
    let mut parentheses = 0usize;
    let mut after_name = false;
    for token in Lexer::new(query) {
        let Ok(token) = token else { break };
        match token.item {
            Token::ParenOpen => parentheses += 1,
            Token::ParenClose => parentheses = parentheses.saturating_sub(1),
            Token::Colon if after_name && parentheses == 0 => aliases += 1,
            _ => {}
        }
        after_name = matches!(token.item, Token::Name(_));
    }
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_selections_and_fragments() {
        let query = "query Q($id: ID = 1) { a: user(id: $id) { b: name } ...F } \
                     fragment F on Query { c: __typename }";
        assert_eq!(count_aliases(query), 3);
    }

    #[test]
    fn arguments_and_input_objects_are_not_aliases() {
        let query = r#"query($x: Int) { search(filter: { name: "a", tags: ["b"] }, first: $x) @include(if: true) }"#;
        assert_eq!(count_aliases(query), 0);
    }

    #[test]
    fn a_malformed_document_stops_the_count() {
        assert_eq!(count_aliases("{ a: x \"unterminated"), 1);
    }
}
