using System.Runtime.InteropServices;
using System.Text.Json;
using HostVM.Machine.Cpu;

namespace HostVM.Machine.State;

/// <summary>The machine state section of a snapshot (docs/snapshot-format.md): a <see cref="MachineState"/> as JSON.</summary>
public static class MachineStateCodec
{
    private const string Where = "the machine state";

    public static byte[] Encode(MachineState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var document = new MachineStateDocument(
            state.MemorySize,
            [.. state.Harts.Select(h => new HartDocument(RegisterBytes(h.Registers), h.RunState, h.StopSelfPending, h.SupervisorTimerFromFirmware,
                h.LastTrapCause, h.LastTrapValue))],
            state.Clock, state.Clint, state.Plic, state.Uart, state.Rtc, state.Htif, state.Virtio);
        return JsonSerializer.SerializeToUtf8Bytes(document, MachineStateJsonContext.Default.MachineStateDocument);
    }

    private static byte[] RegisterBytes(HartState registers) => MemoryMarshal.AsBytes(new ReadOnlySpan<HartState>(in registers)).ToArray();

    /// <exception cref="SnapshotFormatException">The section is not a machine state this HostVM reads.</exception>
    public static MachineState Decode(ReadOnlySpan<byte> bytes, string name)
    {
        MachineStateDocument document;
        try
        {
            document = JsonSerializer.Deserialize(bytes, MachineStateJsonContext.Default.MachineStateDocument)
                ?? throw SnapshotFile.Bad(name, Where, "empty");
        }
        catch (JsonException e)
        {
            throw SnapshotFile.Bad(name, Where, e.Message.ReplaceLineEndings(" "));
        }

        int size = Marshal.SizeOf<HartState>();
        var harts = document.Harts.Select((h, i) => h.Registers is { } r && r.Length == size
            ? new HartSnapshot(MemoryMarshal.Read<HartState>(r), h.RunState, h.StopSelfPending, h.SupervisorTimerFromFirmware, h.LastTrapCause, h.LastTrapValue)
            : throw SnapshotFile.Bad(name, Where, $"hart {i}'s registers are {h.Registers?.Length ?? 0} bytes, not the {size} of this HostVM's harts"));
        return new MachineState(document.MemorySize, [.. harts], document.Clock, document.Clint, document.Plic, document.Uart, document.Rtc,
            document.Htif, document.Virtio);
    }
}
