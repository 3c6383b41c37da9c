using System.Threading.Channels;

namespace HostVM.Host.Inventory;

/// <summary>One subscriber's queue of events (<see cref="EventBroadcaster.Subscribe"/>).</summary>
public sealed class EventSubscription : IDisposable
{
    private readonly EventBroadcaster _owner;
    private readonly Channel<EventRecord> _queue;

    internal EventSubscription(EventBroadcaster owner, Channel<EventRecord> queue)
    {
        _owner = owner;
        _queue = queue;
    }

    /// <summary>The events in order; it completes when the subscriber is dropped or the broadcaster closes.</summary>
    public ChannelReader<EventRecord> Reader => _queue.Reader;

    /// <summary>True if the queue was ended because the subscriber fell <see cref="EventBroadcaster.QueueCapacity"/> events behind.</summary>
    public bool Dropped { get; private set; }

    internal bool Offer(EventRecord e) => _queue.Writer.TryWrite(e);

    internal void Complete(bool dropped)
    {
        Dropped = dropped;
        _queue.Writer.TryComplete();
    }

    public void Dispose()
    {
        _owner.Remove(this);
        _queue.Writer.TryComplete();
    }
}
