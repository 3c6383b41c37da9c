using HostVM.Machine.Memory;

namespace HostVM.Machine.Devices;

/// <summary>
/// The SiFive test finisher ("sifive,test0/1", also a syscon for Linux's syscon-poweroff and
/// syscon-reboot). A 32-bit write to offset 0 whose low 16 bits are 0x5555 powers off, 0x7777 reboots,
/// and 0x3333 stops with a failure whose exit code is the high 16 bits. Anything else is ignored and
/// reads return 0. The device has no state.
/// </summary>
public sealed class PowerDevice : IMmioDevice
{
    public const ulong DefaultBase = 0x10_0000;
    public const ulong Size = 0x1000;

    public const ulong FinisherRegister = 0x0;
    public const uint FinisherFail = 0x3333;
    public const uint FinisherPass = 0x5555;
    public const uint FinisherReset = 0x7777;

    private readonly Action<PowerRequest> _request;

    public PowerDevice(Action<PowerRequest> request)
    {
        ArgumentNullException.ThrowIfNull(request);
        _request = request;
    }

    public ulong Read(ulong offset, int size) => 0;

    public void Write(ulong offset, int size, ulong value)
    {
        // OpenSBI's sifive_test driver writes 16 bits (writew); the fail code needs the upper half.
        if (offset != FinisherRegister || size < 2)
        {
            return;
        }

        uint status = (uint)value & 0xFFFF;
        int code = (int)(((uint)value >> 16) & 0xFFFF);
        switch (status)
        {
            case FinisherPass:
                _request(new PowerRequest(PowerAction.PowerOff, 0));
                break;
            case FinisherReset:
                _request(new PowerRequest(PowerAction.Reboot, 0));
                break;
            case FinisherFail:
                _request(new PowerRequest(PowerAction.Fail, code));
                break;
        }
    }
}
