using System.Threading.Channels;

namespace HostVM.Host.Inventory;

/// <summary>
/// Hands every event the inventory commits to each subscriber (the event streams) through a bounded
/// queue of its own. Writers never wait: a subscriber whose queue is full is dropped (its stream ends,
/// and the client resumes from the last id it saw).
/// </summary>
public sealed class EventBroadcaster : IDisposable
{
    public const int QueueCapacity = 1024;

    private readonly InventoryStore _inventory;
    private readonly Lock _lock = new();
    private readonly List<EventSubscription> _subscribers = [];
    private bool _closed;

    public EventBroadcaster(InventoryStore inventory)
    {
        _inventory = inventory;
        inventory.EventWritten += Publish;
    }

    public int SubscriberCount
    {
        get
        {
            lock (_lock)
            {
                return _subscribers.Count;
            }
        }
    }

    /// <summary>A queue of the events written from now on; dispose it to leave.</summary>
    public EventSubscription Subscribe()
    {
        var subscription = new EventSubscription(this, Channel.CreateBounded<EventRecord>(new BoundedChannelOptions(QueueCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails rather than dropping quietly
        }));
        lock (_lock)
        {
            if (_closed)
            {
                subscription.Complete(dropped: false);
            }
            else
            {
                _subscribers.Add(subscription);
            }
        }

        return subscription;
    }

    internal void Remove(EventSubscription subscription)
    {
        lock (_lock)
        {
            _subscribers.Remove(subscription);
        }
    }

    private void Publish(EventRecord e)
    {
        lock (_lock)
        {
            for (int i = _subscribers.Count - 1; i >= 0; i--)
            {
                if (!_subscribers[i].Offer(e))
                {
                    _subscribers[i].Complete(dropped: true);
                    _subscribers.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>Ends every subscription (the daemon stops).</summary>
    public void Dispose()
    {
        _inventory.EventWritten -= Publish;
        lock (_lock)
        {
            _closed = true;
            foreach (var s in _subscribers)
            {
                s.Complete(dropped: false);
            }

            _subscribers.Clear();
        }
    }
}
