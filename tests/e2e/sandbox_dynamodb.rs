//! DynamoDB through the sandbox's edge keeps DynamoDB's promise that the pipeline's status
//! changes rely on: conditional writes racing on one item are atomic, so exactly one passes.

use aws_sdk_dynamodb::types::AttributeValue;
use hybridlab_tests::aws::{create_image_table, unique_name};
use hybridlab_tests::sandbox::edge_clients;

/// Items raced on.
const ITEMS: usize = 30;
/// Concurrent conditional updates on each item.
const RACERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_conditional_updates_on_one_item_let_exactly_one_through() {
    let clients = edge_clients().await;
    let dynamodb = clients.dynamodb;
    let table = unique_name("race");
    create_image_table(&dynamodb, &table).await;

    let take = |id: String, taker: String| {
        let dynamodb = dynamodb.clone();
        let table = table.clone();
        tokio::spawn(async move {
            dynamodb
                .update_item()
                .table_name(table)
                .key("image_id", AttributeValue::S(id))
                .update_expression("SET #status = :processing, taker = :taker")
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
                .expression_attribute_values(":processing", AttributeValue::S("PROCESSING".into()))
                .expression_attribute_values(":taker", AttributeValue::S(taker))
                .send()
                .await
        })
    };

    for n in 0..ITEMS {
        let id = format!("item-{n}");
        dynamodb
            .put_item()
            .table_name(&table)
            .item("image_id", AttributeValue::S(id.clone()))
            .item("status", AttributeValue::S("PENDING".into()))
            .send()
            .await
            .expect("the item is written");
        let racers: Vec<_> = (0..RACERS)
            .map(|racer| take(id.clone(), format!("racer-{racer}")))
            .collect();
        let mut results = Vec::new();
        for racer in racers {
            results.push(racer.await.expect("the task runs"));
        }
        let passed: Vec<usize> = (0..RACERS).filter(|&r| results[r].is_ok()).collect();
        for refused in results.iter().filter_map(|result| result.as_ref().err()) {
            let code = refused
                .as_service_error()
                .map(|err| err.is_conditional_check_failed_exception());
            assert_eq!(
                code,
                Some(true),
                "a loser is refused by its condition: {refused:?}"
            );
        }
        assert_eq!(
            passed.len(),
            1,
            "item {id}: exactly one conditional update passes"
        );
        let winner = format!("racer-{}", passed[0]);
        let row = dynamodb
            .get_item()
            .table_name(&table)
            .key("image_id", AttributeValue::S(id))
            .consistent_read(true)
            .send()
            .await
            .expect("the item is read");
        let taker = row
            .item()
            .and_then(|item| item.get("taker"))
            .and_then(|value| value.as_s().ok())
            .cloned();
        assert_eq!(
            taker.as_deref(),
            Some(winner.as_str()),
            "the item holds the write that passed"
        );
    }
    let _ = dynamodb.delete_table().table_name(&table).send().await;
}
