//! placeholder: statistics for experiments (see the helper's task)
