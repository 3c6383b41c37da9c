using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;

namespace HostVM.Machine.Virtio;

/// <summary>
/// virtio-input (Virtio 1.2 §5.8) presenting one key, KEY_POWER: the host's way to ask a guest to shut
/// down cleanly. <see cref="PressPowerButton"/> sends key down, SYN_REPORT, key up, SYN_REPORT on the
/// event queue; in the guest, evdev turns that into /dev/input/event* and e.g. busybox acpid runs its
/// power-off action. A press made before the driver has offered buffers waits (up to
/// <see cref="MaxPendingPresses"/>) and is delivered when they arrive. Status events from the driver
/// (LEDs; this device has none) are taken and returned. Everything is cheap and never blocks, so it runs
/// on the calling thread: the kicking vCPU, or whoever presses the button.
/// </summary>
public sealed class VirtioInput : VirtioDevice
{
    public const ushort QueueSize = 64;

    /// <summary>Presses held for a driver that has not offered buffers yet; beyond this a press is refused.</summary>
    public const int MaxPendingPresses = 8;

    // Configuration space (§5.8.4): select, subsel, size, 5 reserved bytes, then a 128-byte union.
    public const int ConfigSelect = 0;
    public const int ConfigSubsel = 1;
    public const int ConfigAnswerSize = 2;
    public const int ConfigUnion = 8;
    public const int ConfigUnionSize = 128;

    // What the driver can select (§5.8.4, enum virtio_input_config_select).
    public const byte SelectUnset = 0x00;
    public const byte SelectIdName = 0x01;
    public const byte SelectIdSerial = 0x02;
    public const byte SelectIdDevIds = 0x03;
    public const byte SelectPropBits = 0x10;
    public const byte SelectEvBits = 0x11;
    public const byte SelectAbsInfo = 0x12;

    /// <summary>The identity the guest sees (/proc/bus/input/devices: Name=, Uniq=, I: Bus= Vendor= Product= Version=).</summary>
    public const string Name = "HostVM power button";
    public const string Serial = "hostvm-power";
    public const ushort BusVirtual = 0x06;
    public const ushort Vendor = 0x4856; // "HV"
    public const ushort Product = 0x0001;
    public const ushort Version = 0x0001;

    private const int EventQueue = 0;
    private const int StatusQueue = 1;

    /// <summary>One press as the driver receives it: down, sync, up, sync.</summary>
    private static readonly InputEvent[] PressEvents =
    [
        InputEvent.Key(InputEvent.KeyPower, down: true), InputEvent.Sync(),
        InputEvent.Key(InputEvent.KeyPower, down: false), InputEvent.Sync(),
    ];

    private readonly Lock _sync = new();
    private readonly Lock _configSync = new(); // never held while calling out: the transport reads config under its own lock
    private readonly DescriptorChain _chain = new();
    private readonly Queue<InputEvent> _pending = new();
    private Virtqueue? _events;
    private Virtqueue? _status;
    private byte _select;
    private byte _subsel;
    private long _presses;
    private long _eventsDelivered;
    private long _shortBuffers;

    public VirtioInput()
        : base(VirtioDeviceType.Input, 2, QueueSize)
    {
    }

    /// <summary>Presses accepted by <see cref="PressPowerButton"/> (delivered or still pending).</summary>
    public long PowerPresses => Interlocked.Read(ref _presses);

    /// <summary>Events written into the driver's buffers.</summary>
    public long EventsDelivered => Interlocked.Read(ref _eventsDelivered);

    /// <summary>Event buffers returned unused because they could not hold an event (a broken or hostile driver).</summary>
    public long ShortBuffers => Interlocked.Read(ref _shortBuffers);

    /// <summary>Events waiting for the driver to offer buffers.</summary>
    public int PendingEvents
    {
        get
        {
            lock (_sync)
            {
                return _pending.Count;
            }
        }
    }

    public override ulong DeviceFeatures => 0;

    public override int ConfigSize => ConfigUnion + ConfigUnionSize;

    /// <summary>
    /// Presses the power button: queues key down/up with their SYN_REPORTs and delivers what the driver
    /// has buffers for; the rest follows as it offers more. False when <see cref="MaxPendingPresses"/>
    /// presses are already waiting (the guest is not taking events).
    /// </summary>
    public bool PressPowerButton()
    {
        lock (_sync)
        {
            if (_pending.Count + PressEvents.Length > MaxPendingPresses * PressEvents.Length)
            {
                return false;
            }

            foreach (var e in PressEvents)
            {
                _pending.Enqueue(e);
            }

            Interlocked.Increment(ref _presses);
            Deliver();
        }

        return true;
    }

    public override void ReadConfig(Span<byte> config)
    {
        byte select, subsel;
        lock (_configSync)
        {
            select = _select;
            subsel = _subsel;
        }

        config.Clear();
        config[ConfigSelect] = select;
        config[ConfigSubsel] = subsel;
        config[ConfigAnswerSize] = (byte)Answer(select, subsel, config.Slice(ConfigUnion, ConfigUnionSize));
    }

    /// <summary>Writes the answer to (select, subsel) into the union; returns its size (0: nothing to say).</summary>
    private static int Answer(byte select, byte subsel, Span<byte> union)
    {
        switch (select)
        {
            case SelectIdName when subsel == 0:
                return Encoding.ASCII.GetBytes(Name, union);
            case SelectIdSerial when subsel == 0:
                return Encoding.ASCII.GetBytes(Serial, union);
            case SelectIdDevIds when subsel == 0:
                BinaryPrimitives.WriteUInt16LittleEndian(union, BusVirtual);
                BinaryPrimitives.WriteUInt16LittleEndian(union[2..], Vendor);
                BinaryPrimitives.WriteUInt16LittleEndian(union[4..], Product);
                BinaryPrimitives.WriteUInt16LittleEndian(union[6..], Version);
                return 8;
            case SelectEvBits when subsel == InputEvent.TypeKey:
                // Bitmap of the key codes it sends, bit n in byte n / 8: only KEY_POWER.
                union[InputEvent.KeyPower / 8] = (byte)(1 << (InputEvent.KeyPower % 8));
                return (InputEvent.KeyPower / 8) + 1;
            default:
                // No properties, no other event types (Linux adds EV_SYN itself), no axes, unknown selects.
                return 0;
        }
    }

    public override void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        // Only select and subsel are the driver's to write; the rest is the device's answer.
        lock (_configSync)
        {
            for (int i = 0; i < data.Length; i++)
            {
                switch (offset + i)
                {
                    case ConfigSelect:
                        _select = data[i];
                        break;
                    case ConfigSubsel:
                        _subsel = data[i];
                        break;
                }
            }
        }
    }

    public override void Activate(VirtioActivation activation)
    {
        lock (_sync)
        {
            _events = activation.Queues[EventQueue];
            _status = activation.Queues[StatusQueue];
            Deliver();
            DrainStatus();
        }
    }

    public override void Reset()
    {
        // Pending presses stay: the host asked for them, and the next driver gets them.
        lock (_sync)
        {
            _events = null;
            _status = null;
        }

        lock (_configSync)
        {
            _select = SelectUnset;
            _subsel = 0;
        }
    }

    public override void Notify(int queue)
    {
        lock (_sync)
        {
            if (queue == EventQueue)
            {
                Deliver();
            }
            else
            {
                DrainStatus();
            }
        }
    }

    public override VirtioDeviceState SaveState()
    {
        ImmutableArray<InputEvent> pending;
        lock (_sync)
        {
            pending = [.. _pending];
        }

        lock (_configSync)
        {
            return new VirtioInputState(pending, _select, _subsel);
        }
    }

    public override void RestoreState(VirtioDeviceState state)
    {
        var s = StateOf<VirtioInputState>(state);
        lock (_sync)
        {
            _pending.Clear();
            foreach (var e in s.Pending)
            {
                _pending.Enqueue(e);
            }
        }

        lock (_configSync)
        {
            _select = s.Select;
            _subsel = s.Subsel;
        }
    }

    /// <summary>Moves pending events into the buffers the driver offered, one event per buffer. Under _sync.</summary>
    private void Deliver()
    {
        if (_events is not { } q)
        {
            return;
        }

        Span<byte> bytes = stackalloc byte[InputEvent.Size];
        bool pushed = false;
        try
        {
            while (_pending.Count > 0)
            {
                if (!q.TryPop(_chain))
                {
                    if (q.ArmNotification())
                    {
                        continue; // a buffer arrived while we asked to be told: use it
                    }

                    break; // the driver's next kick brings us back
                }

                if (_chain.WritableLength < InputEvent.Size)
                {
                    // Linux always offers 8 bytes; a smaller buffer goes back empty and the event waits.
                    q.Push(_chain.Head, 0);
                    Interlocked.Increment(ref _shortBuffers);
                    pushed = true;
                    continue;
                }

                _pending.Dequeue().WriteTo(bytes);
                _chain.Write(0, bytes);
                q.Push(_chain.Head, InputEvent.Size);
                Interlocked.Increment(ref _eventsDelivered);
                pushed = true;
            }

            if (pushed)
            {
                SignalUsed(q);
            }
        }
        catch (VirtqueueException e)
        {
            StopQueues(e.Message);
        }
    }

    /// <summary>Takes whatever the driver sent on the status queue (LED and the like) and returns it. Under _sync.</summary>
    private void DrainStatus()
    {
        if (_status is not { } q)
        {
            return;
        }

        bool pushed = false;
        try
        {
            while (q.TryPop(_chain) || (q.ArmNotification() && q.TryPop(_chain)))
            {
                q.Push(_chain.Head, 0);
                pushed = true;
            }

            if (pushed)
            {
                SignalUsed(q);
            }
        }
        catch (VirtqueueException e)
        {
            StopQueues(e.Message);
        }
    }

    private void StopQueues(string reason)
    {
        _events = null;
        _status = null;
        Fail(reason);
    }
}
