using System.Buffers.Binary;

namespace HostVM.Machine.Virtio;

/// <summary>
/// One evdev event as virtio-input carries it (Virtio 1.2 §5.8.6, struct virtio_input_event): le16 type,
/// le16 code, le32 value, 8 bytes.
/// </summary>
public readonly record struct InputEvent(ushort Type, ushort Code, uint Value)
{
    public const int Size = 8;

    /// <summary>Event types (Linux input-event-codes.h).</summary>
    public const ushort TypeSync = 0x00;
    public const ushort TypeKey = 0x01;

    /// <summary>EV_SYN code that ends a group of events.</summary>
    public const ushort SyncReport = 0;

    /// <summary>KEY_POWER: "system power down".</summary>
    public const ushort KeyPower = 116;

    public static InputEvent Key(ushort code, bool down) => new(TypeKey, code, down ? 1u : 0u);

    public static InputEvent Sync() => new(TypeSync, SyncReport, 0);

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination, Type);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], Code);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Value);
    }
}
