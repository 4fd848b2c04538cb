//! The vpcd wire protocol, card side. vpcd (the PC/SC reader driver from vsmartcard) listens
//! on TCP; the card connects as a client. Every message is a 2-byte big-endian length and a
//! payload. One-byte payloads are control bytes; longer ones are command APDUs, answered
//! with the response APDU.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;

/// vpcd's control bytes.
const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// What a card program must do for vpcd.
pub trait CardOs {
    fn atr(&self) -> Vec<u8>;
    fn power_off(&mut self);
    fn power_on(&mut self);
    fn reset(&mut self);
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
}

/// One connection to vpcd.
pub struct Link {
    stream: TcpStream,
}

impl Link {
    pub fn new(stream: TcpStream) -> io::Result<Link> {
        // vpcd writes the length and the payload separately. With Nagle on its side and
        // delayed ACK on ours, each APDU would cost ~40 ms; NODELAY here and QUICKACK before
        // every read keep a whole open-to-ECDH flow near 13 ms.
        stream.set_nodelay(true)?;
        Ok(Link { stream })
    }

    /// Next message, or `None` when vpcd closed the connection.
    pub fn read(&mut self) -> io::Result<Option<Vec<u8>>> {
        // The kernel clears QUICKACK after a while, so set it again before each read.
        let _ = rustix::net::sockopt::set_tcp_quickack(self.stream.as_fd(), true);
        let mut len = [0u8; 2];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        let _ = rustix::net::sockopt::set_tcp_quickack(self.stream.as_fd(), true);
        self.stream.read_exact(&mut payload)?;
        Ok(Some(payload))
    }

    pub fn write(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u16::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "answer over 64 KiB"))?;
        let mut frame = Vec::with_capacity(payload.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(payload);
        // One write: the frame must not be split into two segments on our side either.
        self.stream.write_all(&frame)
    }

    /// Serves vpcd until it hangs up (or the socket is shut down by a pull).
    pub fn serve(&mut self, card: &mut dyn CardOs) -> io::Result<()> {
        while let Some(msg) = self.read()? {
            match msg.as_slice() {
                [POWER_OFF] => card.power_off(),
                [POWER_ON] => card.power_on(),
                [RESET] => card.reset(),
                [GET_ATR] => self.write(&card.atr())?,
                [_] | [] => {} // unknown control byte: vpcd expects no answer
                apdu => {
                    let answer = card.transmit(apdu);
                    self.write(&answer)?;
                }
            }
        }
        Ok(())
    }
}
