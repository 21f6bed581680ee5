#define BOOST_TEST_MODULE agent_core
#include <boost/test/unit_test.hpp>
