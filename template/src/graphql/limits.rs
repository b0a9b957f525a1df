//! Limits juniper does not enforce itself: operations per batch and aliases per document.
//!
//! Depth and field-count limits are set on the schema (`schema::build`). Every limit is
//! checked before its operation executes, so a hostile document costs no more than its
//! parse.

use juniper::{
    http::GraphQLBatchRequest,
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
    /// The request as a whole: its batch size, and that every operation's variables
    /// are a map.
    ///
    /// # Errors
    /// `QueryTooComplex` for an oversized batch, `BadRequest` for an empty batch or
    /// variables that are no map.
    pub fn check_request(&self, request: &GraphQLBatchRequest) -> Result<(), AppError> {
        let operations = match request {
            GraphQLBatchRequest::Single(operation) => std::slice::from_ref(operation),
            GraphQLBatchRequest::Batch(operations) => operations.as_slice(),
        };
        if operations.is_empty() {
            return Err(AppError::BadRequest("the batch holds no operation".into()));
        }
        if operations.len() > self.max_batch {
            return Err(AppError::QueryTooComplex(format!(
                "a batch may hold at most {} operations",
                self.max_batch
            )));
        }
        // juniper would run with no variables at all in place of a string or a list.
        if operations.iter().any(|operation| {
            operation
                .variables
                .as_ref()
                .is_some_and(|v| !v.is_null() && v.to_object_value().is_none())
        }) {
            return Err(AppError::BadRequest("variables must be a map".into()));
        }
        Ok(())
    }

    /// One operation's document, before it runs.
    ///
    /// # Errors
    /// `QueryTooComplex` for too many aliases.
    pub fn check_document(&self, query: &str) -> Result<(), AppError> {
        if count_aliases(query) > self.max_aliases {
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
