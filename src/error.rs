//! The crate's error: one variant per phase, each wrapping that phase's own error.

/// Any error of the engine. Each phase has its own error type; this wraps them so that an
/// application can use `?` across phases and still match on the cause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A grid could not be read or built.
    #[error(transparent)]
    Grid(#[from] crate::grid::GridError),
    /// A coordinate pair is not a valid location.
    #[error(transparent)]
    Location(#[from] crate::grid::LocationError),
    /// A city config could not be read or built.
    #[error(transparent)]
    Config(#[from] crate::city::ConfigError),
    /// An id passed to a city lookup does not belong to the city.
    #[error(transparent)]
    UnknownId(#[from] crate::city::UnknownId),
    /// A jurisdiction boundary could not be read.
    #[error(transparent)]
    Jurisdiction(#[from] crate::grid::JurisdictionError),
    /// A routing request was refused.
    #[error(transparent)]
    Routing(#[from] crate::routing::RoutingError),
    /// An engine could not be built.
    #[error(transparent)]
    Engine(#[from] crate::pipeline::EngineError),
    /// A report was refused.
    #[error(transparent)]
    Submit(#[from] crate::pipeline::SubmitError),
    /// An action on a case was refused.
    #[error(transparent)]
    Lifecycle(#[from] crate::pipeline::LifecycleError),
    /// The journal could not be opened, read or written.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// The first few items of a list of problems, then how many more: for one-line messages.
pub(crate) fn summary<T: std::fmt::Display>(problems: &[T]) -> String {
    const SHOWN: usize = 5;
    let mut s: Vec<String> = problems
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect();
    if problems.len() > SHOWN {
        s.push(format!("and {} more", problems.len() - SHOWN));
    }
    s.join("; ")
}
