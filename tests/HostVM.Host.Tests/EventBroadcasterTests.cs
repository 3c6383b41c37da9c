using HostVM.Host.Inventory;

namespace HostVM.Host.Tests;

/// <summary>Events reach subscribers once committed, in order; a subscriber that does not read is dropped, never blocking writers.</summary>
public sealed class EventBroadcasterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-events-").FullName;

    private static VmRecord Vm(string name) => new() { Id = name + "-id", Name = name, Image = "guest", State = VmStates.Stopped };

    [Fact]
    public void SubscribersGetEveryCommittedEventInIdOrderWithTheStoredIds()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        store.AddEvent(null, "daemon", "before anyone listened");
        using var events = new EventBroadcaster(store);
        using var a = events.Subscribe();
        using var b = events.Subscribe();
        store.PutVm(Vm("web"), "created", "created");
        store.PutVm(Vm("web") with { State = VmStates.Running }, "started", "started");
        store.DeleteVm(Vm("web"), "deleted");
        store.PutNetwork(new NetworkRecord { Name = "lan" }); // no event: none announced

        var stored = store.EventsAfter(0, null, 100);
        foreach (var sub in new[] { a, b })
        {
            var got = Drain(sub);
            Assert.Equal(["created", "started", "deleted"], got.Select(e => e.Type));
            Assert.Equal(stored.Skip(1), got); // same ids, times and texts as the inventory holds
        }
    }

    [Fact]
    public void AFailedTransactionAnnouncesNothing()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        using var events = new EventBroadcaster(store);
        using var sub = events.Subscribe();
        store.PutVm(Vm("web"), "created", "created");
        // A second VM with a taken name violates the UNIQUE name: the insert and its event roll back.
        Assert.ThrowsAny<Microsoft.Data.Sqlite.SqliteException>(() => store.PutVm(Vm("web") with { Id = "other" }, "created", "created again"));
        Assert.Equal(["created"], Drain(sub).Select(e => e.Message));
        Assert.Single(store.EventsAfter(0, "web", 100));
    }

    [Fact]
    public void ASlowSubscriberIsDroppedAndTheOthersAndWritersGoOn()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        using var events = new EventBroadcaster(store);
        using var slow = events.Subscribe();
        using var fast = events.Subscribe();
        int seen = 0;
        for (int i = 0; i < EventBroadcaster.QueueCapacity + 10; i++)
        {
            store.AddEvent(null, "test", $"event {i}");
            seen += Drain(fast).Count;
        }

        Assert.Equal(EventBroadcaster.QueueCapacity + 10, seen);
        Assert.True(slow.Dropped);
        Assert.Equal(EventBroadcaster.QueueCapacity, Drain(slow).Count); // what was queued is still readable
        Assert.True(slow.Reader.Completion.IsCompleted);
        Assert.False(fast.Dropped);
        Assert.Equal(1, events.SubscriberCount);
    }

    [Fact]
    public void DisposingTheBroadcasterEndsTheSubscriptions()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        var events = new EventBroadcaster(store);
        using var sub = events.Subscribe();
        events.Dispose();
        Assert.True(sub.Reader.Completion.IsCompleted);
        Assert.False(sub.Dropped);
        store.AddEvent(null, "daemon", "after");
        Assert.Empty(Drain(sub));
        using var late = events.Subscribe();
        Assert.True(late.Reader.Completion.IsCompleted);
    }

    private static List<EventRecord> Drain(EventSubscription sub)
    {
        var list = new List<EventRecord>();
        while (sub.Reader.TryRead(out var e))
        {
            list.Add(e);
        }

        return list;
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }
}
