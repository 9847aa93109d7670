import Testing

@testable import ChorusSocketIO

/// A socket's rooms are its connection's keys of its namespace, matched in place (SessionTableTests
/// checks them on a live connection).
@Suite struct SocketRoomsTests {
    @Test func aKeyNamesItsRoomOnlyInItsNamespace() {
        #expect(SocketRooms.key("/#a", names: "a", in: "/"))
        #expect(SocketRooms.key("/admin#a#b", names: "a#b", in: "/admin"))
        #expect(!SocketRooms.key("/#ab", names: "a", in: "/"))
        #expect(!SocketRooms.key("/#a", names: "ab", in: "/"))
        #expect(!SocketRooms.key("/admin#a", names: "a", in: "/"))
        #expect(!SocketRooms.key("/#admin#a", names: "a", in: "/admin"))
        #expect(!SocketRooms.key("/xa", names: "a", in: "/"))
        #expect(SocketRooms.key("/#", names: "", in: "/"))
    }
}
