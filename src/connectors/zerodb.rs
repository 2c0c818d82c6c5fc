//! ZeroDB, a vector store: `Authorization: Bearer <api_key>` against the host in the
//! integration's `base_url` credential. Paths and bodies follow the product spec (the seed's
//! connector); ZeroDB publishes no public reference we could check them against.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::deleted;
use super::schema::Ty;
use super::transport::{ProviderRequest, bad_answer};
use super::{
    Auth, Field, Identity, NoParams, Page, Params, PlatformDef, Schema, Session, items_of,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;
use http::Method;

/// Largest vector accepted (OpenAI's largest embedding is 3072).
const MAX_DIMENSION: usize = 8192;
const MAX_VECTORS_PER_CALL: usize = 1000;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Zerodb, auth, test_connection)
        .base_url_from("base_url")
        .write(
            "store_embeddings",
            "Store (upsert) vectors with their metadata in a collection.",
            store_embeddings,
        )
        .read(
            "search_vectors",
            "Find the vectors nearest to a query vector, with optional metadata filter.",
            search_vectors,
        )
        .read(
            "get_embedding",
            "Get one stored vector and its metadata.",
            get_embedding,
        )
        .write(
            "delete_embedding",
            "Delete one stored vector.",
            delete_embedding,
        )
        .read(
            "list_collections",
            "List the collections of the database.",
            list_collections,
        )
        .write(
            "create_collection",
            "Create a collection of vectors of one dimension.",
            create_collection,
        )
        .read(
            "get_collection_stats",
            "Get a collection's size and index statistics.",
            get_collection_stats,
        )
}

fn auth(creds: &Credentials) -> Result<Auth, Error> {
    Auth::bearer(creds.require("api_key")?)
}

/// An authenticated call, so a wrong key or host fails the test (the old connector answered
/// success without calling anything).
async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["collections"]);
    s.json(ProviderRequest::get(url)).await?;
    Ok(Identity::default())
}

fn collection_field() -> Field {
    Field::id("collection", "The collection name.").required()
}

fn vector_field(name: &'static str, description: &'static str) -> Field {
    Field::array(name, description, Ty::number(), 1, MAX_DIMENSION).required()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: String,
    vector: Vec<f64>,
    metadata: Option<Map<String, Value>>,
    document: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreEmbeddings {
    collection: String,
    vectors: Vec<Vector>,
}

impl Params for StoreEmbeddings {
    fn schema() -> Schema {
        Schema::new(vec![
            collection_field(),
            Field::array(
                "vectors",
                "The vectors to store; an existing id is replaced.",
                Ty::Object(vec![
                    Field::id("id", "The vector's id.").required(),
                    vector_field("vector", "The embedding."),
                    Field::any_object("metadata", "Metadata to filter on later."),
                    Field::text("document", "The text the embedding was made from.", 100_000),
                ]),
                1,
                MAX_VECTORS_PER_CALL,
            )
            .required(),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        // One collection holds one dimension: a batch mixing them is a caller mistake.
        let first = self.vectors.first().map_or(0, |v| v.vector.len());
        match self.vectors.iter().position(|v| v.vector.len() != first) {
            Some(i) => Err(Error::invalid_field(
                format!("params.vectors[{i}].vector"),
                "must have the same dimension as the first vector",
            )),
            None => Ok(()),
        }
    }
}

async fn store_embeddings(mut s: Session, p: StoreEmbeddings) -> Result<Page, Error> {
    let vectors: Vec<Value> = p
        .vectors
        .into_iter()
        .map(|v| {
            json!({
                "id": v.id,
                "vector": v.vector,
                "metadata": v.metadata.unwrap_or_default(),
                "document": v.document,
            })
        })
        .collect();
    let body = json!({"collection": p.collection, "vectors": vectors});
    let url = s.url(&["embeddings"]);
    let answer = s
        .json(ProviderRequest::json(Method::POST, url, &body))
        .await?;
    Ok(Page::one(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchVectors {
    collection: String,
    vector: Vec<f64>,
    top_k: i64,
    filter: Option<Map<String, Value>>,
    include_vectors: bool,
}

impl Params for SearchVectors {
    fn schema() -> Schema {
        Schema::new(vec![
            collection_field(),
            vector_field("vector", "The query embedding."),
            Field::integer("top_k", "How many nearest vectors to return.", 1, 100)
                .default(json!(10)),
            Field::any_object("filter", "Metadata the results must match."),
            Field::boolean("include_vectors", "Return the stored vectors too.")
                .default(json!(false)),
        ])
    }
}

/// A search only reads: its POST may be retried.
async fn search_vectors(mut s: Session, p: SearchVectors) -> Result<Page, Error> {
    let body = json!({
        "collection": p.collection,
        "vector": p.vector,
        "top_k": p.top_k,
        "filter": p.filter,
        "include_vectors": p.include_vectors,
    });
    let url = s.url(&["search"]);
    let mut answer = s
        .json(ProviderRequest::json(Method::POST, url, &body).idempotent(true))
        .await?;
    let items = items_of(&mut answer, &["results", "matches"])
        .ok_or_else(|| bad_answer(Platform::Zerodb, "no results list"))?;
    Ok(Page::list(items, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingRef {
    collection: String,
    id: String,
}

impl Params for EmbeddingRef {
    fn schema() -> Schema {
        Schema::new(vec![
            collection_field(),
            Field::id("id", "The vector's id.").required(),
        ])
    }
}

async fn get_embedding(mut s: Session, p: EmbeddingRef) -> Result<Page, Error> {
    let url = s.url(&["embeddings", &p.id]);
    let req = ProviderRequest::get(url).query([("collection", p.collection)]);
    Ok(Page::one(s.json(req).await?))
}

async fn delete_embedding(mut s: Session, p: EmbeddingRef) -> Result<Page, Error> {
    let url = s.url(&["embeddings", &p.id]);
    let req = ProviderRequest::new(Method::DELETE, url).query([("collection", p.collection)]);
    let answer = s.json(req).await?;
    Ok(deleted(answer, "id", p.id))
}

async fn list_collections(mut s: Session, _: NoParams) -> Result<Page, Error> {
    let url = s.url(&["collections"]);
    let mut answer = s.json(ProviderRequest::get(url)).await?;
    let items = items_of(&mut answer, &["collections"])
        .ok_or_else(|| bad_answer(Platform::Zerodb, "no collections list"))?;
    Ok(Page::list(items, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCollection {
    name: String,
    dimension: i64,
    metadata: Option<Map<String, Value>>,
}

impl Params for CreateCollection {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("name", "The new collection's name.").required(),
            Field::integer(
                "dimension",
                "Dimension of its vectors.",
                1,
                MAX_DIMENSION as i64,
            )
            .default(json!(1536)),
            Field::any_object("metadata", "Metadata of the collection."),
        ])
    }
}

async fn create_collection(mut s: Session, p: CreateCollection) -> Result<Page, Error> {
    let body = json!({
        "name": p.name,
        "dimension": p.dimension,
        "metadata": p.metadata.unwrap_or_default(),
    });
    let url = s.url(&["collections"]);
    Ok(Page::one(
        s.json(ProviderRequest::json(Method::POST, url, &body))
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectionRef {
    collection: String,
}

impl Params for CollectionRef {
    fn schema() -> Schema {
        Schema::new(vec![collection_field()])
    }
}

async fn get_collection_stats(mut s: Session, p: CollectionRef) -> Result<Page, Error> {
    let url = s.url(&["collections", &p.collection, "stats"]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}
