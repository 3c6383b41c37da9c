using System.Buffers.Binary;
using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Devices;

/// <summary>
/// The host-target interface of Spike and the riscv-tests: two 64-bit words in the program's image,
/// <c>tohost</c> and <c>fromhost</c>, found through the ELF symbols of those names. Map this device over
/// them with <c>bus.Map(htif.WindowBase, htif.WindowSize, htif)</c>: the window runs from the lower of the
/// two words to the end of the higher (riscv-tests put them 64 bytes apart), and bytes between them act as
/// ordinary memory. Without a fromhost symbol the window is tohost's 8 bytes.
///
/// A command is a write to tohost: bits 63:56 device, 55:48 command, 47:0 payload. It is taken when all
/// 64 bits are written (one 8-byte store, or two 4-byte stores low half then high half, as RV32 code does).
/// Handled commands, after which tohost reads 0 again (the host consumed it):
/// device 0 command 0 with payload bit 0 set: the program exits with code payload >> 1 (0 = pass);
/// device 1 command 1: console output of the payload's low byte, acknowledged in fromhost with
/// (device &lt;&lt; 56 | command &lt;&lt; 48 | 0x100 | byte), as Spike's front-end server does.
/// Everything else (system-call proxying, console input) is not provided: it is consumed and ignored.
/// </summary>
public sealed class HtifDevice : IMmioDevice, IPersistent<HtifState>
{
    public const int ExitDevice = 0;
    public const int ExitCommand = 0;
    public const int ConsoleDevice = 1;
    public const int ConsolePutCommand = 1;

    /// <summary>The most the two words may be apart (they are meant to sit in one small section).</summary>
    public const ulong MaxWindowSize = 0x1000;

    private readonly Action<int> _exit;
    private readonly Action<byte> _output;
    private readonly int _toHost;
    private readonly int _fromHost;
    private readonly Lock _lock = new();
    private HtifState _state;

    /// <param name="toHostAddress">Physical address of the <c>tohost</c> word (8-byte aligned).</param>
    /// <param name="fromHostAddress">Physical address of <c>fromhost</c>, or null when the program has none.</param>
    /// <param name="exit">Called with the exit code when the program reports it is done.</param>
    /// <param name="output">Called with each console byte.</param>
    public HtifDevice(ulong toHostAddress, ulong? fromHostAddress, Action<int> exit, Action<byte> output)
    {
        ArgumentNullException.ThrowIfNull(exit);
        ArgumentNullException.ThrowIfNull(output);
        ulong from = fromHostAddress ?? toHostAddress;
        if (toHostAddress % 8 != 0 || from % 8 != 0)
        {
            throw new ArgumentException(
                $"tohost (0x{toHostAddress:x}) and fromhost (0x{from:x}) must be 8-byte aligned; the program's image is not a riscv-tests style image.");
        }

        if (fromHostAddress == toHostAddress)
        {
            throw new ArgumentException($"tohost and fromhost are both at 0x{toHostAddress:x}; the program's symbols are wrong.");
        }

        ulong low = Math.Min(toHostAddress, from);
        ulong high = Math.Max(toHostAddress, from);
        if (high - low >= MaxWindowSize || high + 8 < high)
        {
            throw new ArgumentException(
                $"tohost (0x{toHostAddress:x}) and fromhost (0x{from:x}) are more than 0x{MaxWindowSize:x} bytes apart; put them in one section.");
        }

        WindowBase = low;
        WindowSize = high + 8 - low;
        _toHost = (int)(toHostAddress - low);
        _fromHost = fromHostAddress is null ? -1 : (int)(from - low);
        _exit = exit;
        _output = output;
        _state = new HtifState(new byte[WindowSize]);
    }

    /// <summary>Where to map the device.</summary>
    public ulong WindowBase { get; }

    /// <summary>How many bytes to map.</summary>
    public ulong WindowSize { get; }

    public ulong Read(ulong offset, int size)
    {
        lock (_lock)
        {
            var window = _state.Window;
            if (offset > (ulong)window.Length || (ulong)size > (ulong)window.Length - offset)
            {
                return 0;
            }

            var bytes = window.AsSpan((int)offset, size);
            return size switch
            {
                1 => bytes[0],
                2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes),
                4 => BinaryPrimitives.ReadUInt32LittleEndian(bytes),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(bytes),
            };
        }
    }

    public void Write(ulong offset, int size, ulong value)
    {
        lock (_lock)
        {
            var window = _state.Window;
            if (offset > (ulong)window.Length || (ulong)size > (ulong)window.Length - offset)
            {
                return;
            }

            var bytes = window.AsSpan((int)offset, size);
            for (int i = 0; i < size; i++)
            {
                bytes[i] = (byte)(value >> (i * 8));
            }

            // A command is complete once tohost's last byte is written: by an 8-byte store or the high half.
            int end = (int)offset + size;
            if ((int)offset <= _toHost + 4 && end == _toHost + 8 && (size == 8 || size == 4))
            {
                ulong command = BinaryPrimitives.ReadUInt64LittleEndian(window.AsSpan(_toHost, 8));
                if (command != 0)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(window.AsSpan(_toHost, 8), 0);
                    Execute(command);
                }
            }
        }
    }

    public HtifState SaveState()
    {
        lock (_lock)
        {
            return _state.DeepCopy();
        }
    }

    public void RestoreState(HtifState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if ((ulong)state.Window.Length != WindowSize)
        {
            throw new ArgumentException($"The snapshot's HTIF window has {state.Window.Length} bytes; this one has {WindowSize}.", nameof(state));
        }

        lock (_lock)
        {
            _state = state.DeepCopy();
        }
    }

    private void Execute(ulong command)
    {
        int device = (int)(command >> 56);
        int cmd = (int)((command >> 48) & 0xFF);
        ulong payload = command & 0xFFFF_FFFF_FFFF;
        if (device == ExitDevice && cmd == ExitCommand && (payload & 1) != 0)
        {
            _exit((int)Math.Min(payload >> 1, int.MaxValue));
        }
        else if (device == ConsoleDevice && cmd == ConsolePutCommand)
        {
            byte character = (byte)payload;
            _output(character);
            if (_fromHost >= 0)
            {
                ulong acknowledgement = (command & 0xFFFF_0000_0000_0000) | 0x100UL | character;
                BinaryPrimitives.WriteUInt64LittleEndian(_state.Window.AsSpan(_fromHost, 8), acknowledgement);
            }
        }
    }
}
