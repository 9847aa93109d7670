import Testing

@testable import ChorusSocketIO

/// A socket's rooms, kept as their namespaced keys: matched in place, a list up to 16, a set beyond.
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

    @Test(arguments: [3, 16, 17, 40])
    func membershipWorksAsAListAndAsASet(rooms: Int) {
        var joined = SocketRooms()
        for i in 0..<rooms {
            let inserted = joined.insert("/#room\(i)")
            #expect(inserted)
        }
        let again = joined.insert("/#room0")
        #expect(!again)
        #expect(joined.count == rooms)
        for i in 0..<rooms { #expect(joined.key(of: "room\(i)", namespace: "/") == "/#room\(i)") }
        #expect(joined.key(of: "room\(rooms)", namespace: "/") == nil)
        #expect(joined.key(of: "room0", namespace: "/other") == nil)
        let removed = joined.remove("/#room1")
        let removedAgain = joined.remove("/#room1")
        #expect(removed && !removedAgain)
        #expect(joined.key(of: "room1", namespace: "/") == nil)
        #expect(Set(joined.names(namespace: "/")) == Set((0..<rooms).filter { $0 != 1 }.map { "room\($0)" }))
        joined.removeAll()
        #expect(joined.isEmpty)
    }
}
