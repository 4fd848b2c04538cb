//! ISO 7816-4 APDUs as the card sees them: command parsing (short and extended forms),
//! status words, and the two chaining mechanisms a YubiKey speaks: command chaining (CLA bit
//! 0x10) for long requests and `61xx` + GET RESPONSE for long answers.

/// A status word (SW1 SW2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sw(pub u16);

impl Sw {
    pub const OK: Sw = Sw(0x9000);
    pub const WRONG_LENGTH: Sw = Sw(0x6700);
    pub const SECURITY_STATUS: Sw = Sw(0x6982);
    pub const AUTH_BLOCKED: Sw = Sw(0x6983);
    pub const CONDITIONS_NOT_SATISFIED: Sw = Sw(0x6985);
    pub const WRONG_DATA: Sw = Sw(0x6A80);
    pub const NOT_FOUND: Sw = Sw(0x6A82);
    pub const REFERENCE_NOT_FOUND: Sw = Sw(0x6A88);
    pub const INCORRECT_P1P2: Sw = Sw(0x6A86);
    pub const WRONG_P1P2: Sw = Sw(0x6B00);
    pub const INS_NOT_SUPPORTED: Sw = Sw(0x6D00);
    pub const CLA_NOT_SUPPORTED: Sw = Sw(0x6E00);

    /// `63 Cx`: verification failed, `x` tries left.
    pub fn tries_left(n: u8) -> Sw {
        Sw(0x63C0 | u16::from(n.min(15)))
    }
}

/// A parsed command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected response length; `None` for cases 1 and 3. Short Le 00 means 256.
    pub le: Option<usize>,
}

impl Command {
    /// Parses the four ISO cases in short and extended form. Clients differ here: the
    /// `yubikey` crate sends `00 FD 00 00 00` (a lone fifth byte is Le, not Lc) and never an
    /// Le after data; yubico-piv-tool, ykman and OpenSC may append one.
    pub fn parse(raw: &[u8]) -> Result<Command, Sw> {
        let [cla, ins, p1, p2, body @ ..] = raw else {
            return Err(Sw::WRONG_LENGTH);
        };
        let (data, le) = match body {
            [] => (&[][..], None),
            [le] => (&[][..], Some(short_le(*le))),
            [0, hi, lo] => (&[][..], Some(extended_le(*hi, *lo))),
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest, None),
                    Some(2) => (&rest[..lc], Some(extended_le(rest[lc], rest[lc + 1]))),
                    _ => return Err(Sw::WRONG_LENGTH),
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest, None),
                    Some(1) => (&rest[..lc], Some(short_le(rest[lc]))),
                    _ => return Err(Sw::WRONG_LENGTH),
                }
            }
        };
        Ok(Command {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data: data.to_vec(),
            le,
        })
    }
}

fn short_le(b: u8) -> usize {
    if b == 0 { 256 } else { usize::from(b) }
}

fn extended_le(hi: u8, lo: u8) -> usize {
    match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => usize::from(n),
    }
}

/// A response APDU: data, then the status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: Sw,
}

impl Response {
    pub fn ok(data: Vec<u8>) -> Response {
        Response { data, sw: Sw::OK }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.0.to_be_bytes());
        out
    }
}

impl From<Sw> for Response {
    fn from(sw: Sw) -> Response {
        Response {
            data: Vec::new(),
            sw,
        }
    }
}

/// Largest answer sent in one short response; the rest waits for GET RESPONSE.
const SHORT_CHUNK: usize = 256;
const INS_GET_RESPONSE: u8 = 0xC0;
const CLA_CHAIN: u8 = 0x10;

/// Reassembles chained commands and splits long answers, so the applet only ever sees whole
/// commands and produces whole responses.
#[derive(Debug, Default)]
pub struct Chainer {
    /// Header and data of a command chain in progress.
    pending_command: Option<(u8, u8, u8, Vec<u8>)>,
    /// Unsent tail of the last answer.
    pending_response: Vec<u8>,
}

impl Chainer {
    /// Forgets partial chains: a card reset drops them.
    pub fn clear(&mut self) {
        *self = Chainer::default();
    }

    /// Handles one raw command APDU, calling `process` for each complete command.
    pub fn handle(&mut self, raw: &[u8], process: impl FnOnce(&Command) -> Response) -> Vec<u8> {
        let mut cmd = match Command::parse(raw) {
            Ok(cmd) => cmd,
            Err(sw) => {
                self.clear();
                return Response::from(sw).to_bytes();
            }
        };
        if cmd.ins == INS_GET_RESPONSE && cmd.cla & CLA_CHAIN == 0 {
            return self.next_chunk(cmd.le.unwrap_or(SHORT_CHUNK)).to_bytes();
        }
        self.pending_response.clear();
        if cmd.cla & CLA_CHAIN != 0 {
            match &mut self.pending_command {
                Some((ins, p1, p2, data)) if (*ins, *p1, *p2) == (cmd.ins, cmd.p1, cmd.p2) => {
                    data.extend_from_slice(&cmd.data);
                }
                _ => self.pending_command = Some((cmd.ins, cmd.p1, cmd.p2, cmd.data)),
            }
            return Response::from(Sw::OK).to_bytes();
        }
        // The last link of a chain: prepend what came before (a different command drops it).
        if let Some((ins, p1, p2, mut data)) = self.pending_command.take()
            && (ins, p1, p2) == (cmd.ins, cmd.p1, cmd.p2)
        {
            data.extend_from_slice(&cmd.data);
            cmd.data = data;
        }
        let response = process(&cmd);
        // An extended Le lets the client take the whole answer at once.
        let limit = cmd.le.filter(|le| *le > SHORT_CHUNK).unwrap_or(SHORT_CHUNK);
        if response.data.len() <= limit || response.sw != Sw::OK {
            return response.to_bytes();
        }
        self.pending_response = response.data;
        self.next_chunk(limit).to_bytes()
    }

    fn next_chunk(&mut self, limit: usize) -> Response {
        if self.pending_response.is_empty() {
            return Sw::CONDITIONS_NOT_SATISFIED.into();
        }
        let n = limit.min(self.pending_response.len());
        let data: Vec<u8> = self.pending_response.drain(..n).collect();
        let left = self.pending_response.len();
        let sw = match left {
            0 => Sw::OK,
            // 61 00 means "256 or more".
            n => Sw(0x6100 | u16::try_from(n).ok().filter(|n| *n < 256).unwrap_or(0)),
        };
        Response { data, sw }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_fifth_byte_is_le() {
        let c = Command::parse(&[0, 0xFD, 0, 0, 0]).unwrap();
        assert_eq!((c.data.len(), c.le), (0, Some(256)));
    }

    #[test]
    fn short_case_4_and_extended_case_3() {
        let c = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 2, 0x5C, 0, 0]).unwrap();
        assert_eq!((c.data, c.le), (vec![0x5C, 0], Some(256)));
        let c = Command::parse(&[0, 0xDB, 0x3F, 0xFF, 0, 0, 1, 0xAA]).unwrap();
        assert_eq!((c.data, c.le), (vec![0xAA], None));
        assert_eq!(Command::parse(&[0, 1, 2, 3, 4, 5]), Err(Sw::WRONG_LENGTH));
    }

    #[test]
    fn long_answers_come_in_61xx_chunks() {
        let mut ch = Chainer::default();
        let first = ch.handle(&[0, 0xCB, 0x3F, 0xFF, 0], |_| Response::ok(vec![7; 300]));
        assert_eq!(first.len(), 258);
        assert_eq!(&first[256..], &[0x61, 44]);
        let second = ch.handle(&[0, 0xC0, 0, 0, 0], |_| unreachable!());
        assert_eq!(second.len(), 46);
        assert_eq!(&second[44..], &[0x90, 0]);
    }

    #[test]
    fn chained_commands_are_joined() {
        let mut ch = Chainer::default();
        assert_eq!(
            ch.handle(&[0x10, 0xDB, 0x3F, 0xFF, 1, 1], |_| unreachable!()),
            [0x90, 0]
        );
        let out = ch.handle(&[0, 0xDB, 0x3F, 0xFF, 1, 2], |c| {
            Response::ok(c.data.clone())
        });
        assert_eq!(out, [1, 2, 0x90, 0]);
    }
}
