using System.Runtime.ExceptionServices;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Runs a fuzz loop on its own thread and fails the test if it does not finish in time, saying where it
/// was stuck, so a hung device thread or an endless walk fails the test instead of hanging the run.
/// </summary>
internal static class FuzzWatchdog
{
    /// <param name="onHang">Called before failing on a hang (e.g. to keep memory a stuck thread still uses).</param>
    public static void Run(Action body, TimeSpan limit, Func<string> where, Action? onHang = null)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            Name = "fuzz",
            IsBackground = true, // a hung loop must not keep the test host alive
        };
        thread.Start();
        if (!thread.Join(limit))
        {
            onHang?.Invoke();
            Assert.Fail($"the fuzz loop did not finish within {limit.TotalSeconds} s; stuck at {where()}");
        }

        failure?.Throw();
    }
}
