//! Generated code: `founderhouse.integrations.v1`.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("founderhouse.integrations.v1");

/// Encoded descriptor set of our protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/founderhouse_descriptor.bin"));

/// The protobuf codec of every generated service and client, with small buffers. tonic's
/// default reserves 8 KiB per call to encode into, which a `WatchHealthEvents` stream holds for
/// its whole life (thousands of streams per replica); our messages are small, and the buffer
/// grows when one is not.
pub struct LeanCodec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// 512 bytes to start with; answers are still flushed in chunks of tonic's default 32 KiB.
fn lean_buffers() -> tonic::codec::BufferSettings {
    tonic::codec::BufferSettings::new(512, 32 * 1024)
}

impl<T, U> tonic::codec::Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = tonic_prost::ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(lean_buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::new(lean_buffers())
    }
}
