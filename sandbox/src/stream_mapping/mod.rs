//! DynamoDB-stream event source mappings, run by the agent as Lambda runs them (moto's own,
//! without Docker, empties the stream's shard: see FIELD-NOTES). [`filter`] is Lambda's event
//! filtering and [`delivery`] its batch retries; both are plain logic.

pub mod delivery;
pub mod filter;
