//! The codec of the generated server: prost's, with a small
//! encode buffer.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Bytes tonic reserves up front to encode a response body. Its default
/// (8 KiB) stays allocated for a whole stream's life to hold a few hundred
/// bytes: 4.1 KiB more resident memory per idle watch stream, measured
/// (BENCHMARKS.md). Every message of this contract is well under 1 KiB, and
/// a larger one simply grows the buffer.
const ENCODE_BUFFER: usize = 1024;
/// tonic's own default: how much a stream encodes before yielding.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// The prost codec with a small encode buffer; named in build.rs as the
/// codec of the generated server.
#[derive(Debug, Clone, Copy)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}
