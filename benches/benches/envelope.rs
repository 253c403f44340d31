//! The cost of the authenticated envelope: sealing and opening one typical protocol datagram
//! (a Bully `AreYouThere`, 5-node loopback addresses) with and without a cluster key, and the
//! replay window's check.
//!
//! `cargo bench -p election-benches --bench envelope`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::Criterion;
use election_core::bully::Msg;
use election_net::keys::{Key, Keyring};
use election_net::replay::ReplayGuard;
use election_net::wire::{self, Body, Header, Stamp};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    let to: SocketAddr = "127.0.0.1:9004".parse().unwrap();
    let header = Header {
        cluster: "election",
        algorithm: "bully",
        from,
        to,
    };
    let ring = Keyring::new(vec![Key::new(0x1234_5678, &[7; 32])]).unwrap();
    let body = Body::Protocol(Msg::AreYouThere);
    let expect = Header {
        from: to,
        ..header.clone()
    };
    let mut sequence = 0u64;
    let mut buf = Vec::with_capacity(wire::MAX_DATAGRAM);
    for (name, keys) in [("keyless", None), ("keyed", Some(&ring))] {
        let key = keys.map(Keyring::primary);
        c.bench_function(&format!("envelope/seal/{name}"), |b| {
            b.iter(|| {
                sequence += 1;
                let stamp = Stamp {
                    incarnation: 1,
                    sequence,
                };
                wire::encode(&header, stamp, black_box(&body), key, &mut buf).unwrap();
                black_box(buf.len())
            })
        });
        let stamp = Stamp {
            incarnation: 1,
            sequence: 1,
        };
        wire::encode(&header, stamp, &body, key, &mut buf).unwrap();
        let datagram = buf.clone();
        println!("{name} datagram: {} bytes", datagram.len());
        let wire_to = Header {
            to,
            ..expect.clone()
        };
        c.bench_function(&format!("envelope/open+parse/{name}"), |b| {
            b.iter(|| {
                let opened = wire::open(black_box(&datagram), &wire_to, keys).unwrap();
                black_box(opened.body::<Msg>().unwrap())
            })
        });
    }
    let mut guard = ReplayGuard::new(64);
    let mut sequence = 0u64;
    c.bench_function("envelope/replay-window", |b| {
        b.iter(|| {
            sequence += 1;
            let stamp = Stamp {
                incarnation: 1,
                sequence,
            };
            black_box(guard.check(from, stamp, sequence, |_| true)).unwrap()
        })
    });
    c.final_summary();
}
