//! Documents: the open files ([`Documents`]), each one's text, version, language and syntax
//! tree ([`Document`]), owned read-only views for the layers above ([`Snapshot`]), and the one
//! place where LSP-style positions become byte offsets ([`position`]).
//!
//! Nothing here knows about LSP types: the server converts its messages into these.

mod document;
pub mod position;
mod store;

pub use document::{Document, DocumentError, DocumentLimits, Snapshot, TextChange};
pub use position::{
    line_col_of, line_col_range_of, line_count, line_end_of, line_start_of, offset_of, offset_range_of, ts_point_of, ByteOffset, LineCol,
    LineColRange, PositionEncoding, PositionError,
};
pub use store::{path_from_uri, Documents};

#[cfg(test)]
mod test_support;
