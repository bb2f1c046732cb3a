//! Series files given to a run: `--carbon-series`, a real carbon-intensity
//! series in CSV (gzip allowed). Reads the file and hands its text to
//! [`CarbonSeries::parse_csv`], which fills short gaps and lists them; the
//! report shows them ([`crate::report::SeriesSummary`]).

use crate::trace::read_file_text;
use std::path::Path;
use suanwang_topology::CarbonSeries;
use suanwang_topology::series::SeriesError;

/// Why a series file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeriesFileError {
    /// The file could not be opened, decompressed or decoded. The message names
    /// the file; the cause is the source (printed once, after it).
    #[error("cannot read {path}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content was refused (naming line and field).
    #[error(transparent)]
    Series(#[from] SeriesError),
}

/// Reads a carbon-intensity series: a CSV with a time and an intensity column,
/// evenly spaced but for gaps of at most
/// [`MAX_FILLED_GAP`](suanwang_topology::series::MAX_FILLED_GAP), which are
/// filled by linear interpolation and listed in [`CarbonSeries::filled`].
pub fn read_carbon_series(path: &Path) -> Result<CarbonSeries, SeriesFileError> {
    let name = path.display().to_string();
    let text = read_file_text(path).map_err(|source| SeriesFileError::Io {
        path: name.clone(),
        source,
    })?;
    Ok(CarbonSeries::parse_csv(&text, &name)?)
}
