//! The card's side of the vpcd protocol, checked against a stand-in for vpcd in this process
//! (a plain TCP listener). Needs no root, pcscd or vpcd, so it runs everywhere.

// Helpers outside #[test] fns panic on purpose too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tapsign_vyk::device::YUBIKEY5_ATR;
use tapsign_vyk::{Config, VirtualYubiKey};

/// Accepts the key's connection, waiting at most a few seconds.
fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                return s;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("the key never connected: {e}"),
        }
    }
}

/// Sends one vpcd frame and, unless it is a control byte other than GET ATR, reads the answer.
fn exchange(s: &mut TcpStream, payload: &[u8]) -> Option<Vec<u8>> {
    let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    s.write_all(&frame).unwrap();
    if payload.len() == 1 && payload[0] != 0x04 {
        return None;
    }
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut answer).unwrap();
    Some(answer)
}

const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
const GET_VERSION: [u8; 5] = [0x00, 0xFD, 0x00, 0x00, 0x00];

#[test]
fn atr_power_and_apdus_over_the_wire() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let key = VirtualYubiKey::spawn(Config::default(), listener.local_addr().unwrap()).unwrap();
    let mut vpcd = accept(&listener);
    assert_eq!(exchange(&mut vpcd, &[0x04]).unwrap(), YUBIKEY5_ATR);
    exchange(&mut vpcd, &[0x01]);
    let select = exchange(&mut vpcd, &SELECT_PIV).unwrap();
    assert_eq!(&select[select.len() - 2..], [0x90, 0x00]);
    assert_eq!(
        exchange(&mut vpcd, &GET_VERSION).unwrap(),
        [5, 4, 3, 0x90, 0x00]
    );
    assert!(key.is_connected());
    drop(key);
}

#[test]
fn pull_closes_the_connection_and_insert_reconnects_with_a_fresh_session() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let key = VirtualYubiKey::spawn(Config::default(), listener.local_addr().unwrap()).unwrap();
    let mut vpcd = accept(&listener);
    exchange(&mut vpcd, &SELECT_PIV);
    key.pull();
    let mut buf = [0u8; 1];
    assert_eq!(vpcd.read(&mut buf).unwrap(), 0, "vpcd sees the card go");
    key.insert();
    let mut vpcd = accept(&listener);
    assert_eq!(key.connections(), 2);
    // The applet is no longer selected: the new session starts from scratch.
    assert_eq!(exchange(&mut vpcd, &GET_VERSION).unwrap(), [0x6D, 0x00]);
}
