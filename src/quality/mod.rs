//! Which suggestions are worth showing: the features of one suggestion ([`features()`], one
//! function for `inkling eval` and the server), their lexical units ([`lexical`]), and the
//! fitted filter that scores them ([`Filter`]; fitted by `python -m inkling_finetune filter`
//! from what `inkling eval` records, evaluated here), and the local log of what happened to the
//! suggestions the server made ([`log`], `logSuggestions`).

pub mod features;
pub mod filter;
pub mod lexical;
pub mod log;

pub use features::{features, Categorical, Features, Numeric};
pub use filter::{Filter, FilterError};

#[cfg(test)]
mod tests;
